/**
 * Reads back a QR code as shipped: rasterizes the SVG the app answers with (its dark path: 1-unit strokes drawn
 * with M/m/H/h/V/v, row centres at .5) into pixels and decodes them with jsQR, an independent decoder. A command
 * this rasterizer does not know fails the test rather than guessing.
 */
import jsQRModule from 'jsqr';

// A CommonJS package typed with a default export: under NodeNext the function is the module's `default`.
const jsQR = jsQRModule.default;

const SCALE = 4;

/** The dark modules of the SVG, as a square boolean grid the size of its viewBox. */
export function svgModules(svg: string): boolean[][] {
  const viewBox = /viewBox="0 0 (\d+) (\d+)"/.exec(svg);
  if (!viewBox || viewBox[1] !== viewBox[2]) throw new Error('the SVG has no square viewBox');
  const size = Number(viewBox[1]);
  const paths = [...svg.matchAll(/<path ([^>]*)\/>/g)].map((m) => m[1]!);
  const dark = paths.filter((attrs) => /stroke="#000000"/.test(attrs));
  if (dark.length !== 1) throw new Error(`expected one dark stroke path, found ${dark.length}`);
  const d = /d="([^"]*)"/.exec(dark[0]!)![1]!;
  const grid = Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
  let x = 0;
  let y = 0;
  const mark = (fromX: number, toX: number, atY: number) => {
    const row = Math.floor(atY);
    for (let col = Math.min(fromX, toX); col < Math.max(fromX, toX); col++) grid[row]![col] = true;
  };
  for (const [, command, args] of d.matchAll(/([A-Za-z])([^A-Za-z]*)/g)) {
    const n =
      args!.trim() === ''
        ? []
        : args!
            .trim()
            .split(/[\s,]+/)
            .map(Number);
    switch (command) {
      case 'M':
        [x, y] = [n[0]!, n[1]!];
        break;
      case 'm':
        [x, y] = [x + n[0]!, y + n[1]!];
        break;
      case 'h':
        mark(x, x + n[0]!, y);
        x += n[0]!;
        break;
      case 'H':
        mark(x, n[0]!, y);
        x = n[0]!;
        break;
      default:
        throw new Error(`path command ${command} is not supported by this rasterizer`);
    }
  }
  return grid;
}

/** The text the SVG's QR code holds, or undefined when jsQR finds none. */
export function decodeQrSvg(svg: string): string | undefined {
  const grid = svgModules(svg);
  const width = grid.length * SCALE;
  const pixels = new Uint8ClampedArray(width * width * 4).fill(255);
  for (let py = 0; py < width; py++) {
    for (let px = 0; px < width; px++) {
      if (!grid[Math.floor(py / SCALE)]![Math.floor(px / SCALE)]) continue;
      const i = (py * width + px) * 4;
      pixels[i] = pixels[i + 1] = pixels[i + 2] = 0;
    }
  }
  return jsQR(pixels, width, width, { inversionAttempts: 'dontInvert' })?.data;
}
