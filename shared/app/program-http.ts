/**
 * HTTP for programmable tokens (functions/programTokens.ts, functions/reprogramToken.ts): a JSON body read
 * within a byte limit, and the services' results as answers. Every answer carries `cache-control: no-store`
 * (json() sets it): a provisioning package must not rest in any cache on its way.
 */
import type { HttpResponseInit } from '@azure/functions';
import type { ProblemCode } from '../core/problems.js';
import type { ProgramResult, ReprogramResult } from '../pipeline/program.js';
import { errorResponse, json } from './http.js';

export type BodyResult = { ok: true; value: unknown } | { ok: false; status: 400 | 413; code: ProblemCode; message: string };

interface RequestLike {
  headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** The body as JSON, refused (413) past maxBytes: by its Content-Length before reading, and by what arrived. */
export async function readBoundedJson(request: RequestLike, maxBytes: number): Promise<BodyResult> {
  const tooLarge = (bytes: number): BodyResult => ({ ok: false, status: 413, code: 'REQUEST_TOO_LARGE', message: `The body is ${bytes} bytes; at most ${maxBytes} are accepted (PROGRAM_MAX_BODY_BYTES). Send the tokens in smaller requests.` });
  const declared = Number(request.headers.get('content-length') ?? '');
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge(declared);
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength > maxBytes) return tooLarge(bytes.byteLength);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, status: 400, code: 'REQUEST_INVALID', message: 'The body is not UTF-8 text.' };
  }
  if (text.trim() === '') return { ok: false, status: 400, code: 'REQUEST_INVALID', message: 'The body is empty; send JSON.' };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    // The parser's message would quote the body: say only that it is not JSON.
    return { ok: false, status: 400, code: 'REQUEST_INVALID', message: 'The body is not valid JSON.' };
  }
}

/** 201 with the package; 409 `{ error: { code, message, serials } }` when nothing was programmed. */
export function programAnswer(result: ProgramResult): HttpResponseInit {
  if (result.kind === 'refused') return json(409, { error: { code: result.code, message: result.message, serials: result.serials } });
  return json(201, { batch: result.batch, report: result.report, tokens: result.tokens });
}

/** 200 with the package (the same shape as programming), 404 or 400/409. */
export function reprogramAnswer(serial: string, result: ReprogramResult): HttpResponseInit {
  if (result.kind === 'not-found') return errorResponse(404, 'TOKEN_NOT_FOUND', `No token has serial ${JSON.stringify(serial)}.`);
  if (result.kind === 'refused') return errorResponse(result.status, result.code, result.message);
  return json(200, { batch: result.batch, report: result.report, tokens: result.tokens });
}
