/** QR codes for provisioning URIs (./otpauth.ts), drawn by the qrcode package. */
import QRCode from 'qrcode';

/**
 * The text as a QR code, an SVG document scaled by its viewBox. Error correction M (15%) keeps a 256-bit secret's
 * URI at a size phone cameras read from a screen; the 4-module quiet zone is the one the QR standard asks for.
 */
export function qrSvg(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 });
}
