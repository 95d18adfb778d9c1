/** POST /api/imports/{file}/uploaded: the CSV is in Entra; mark its tokens imported, then delete it. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';

export async function confirmImportUploaded(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const { getAppContext } = await import('../shared/app/context.js');
  const { errorResponse, guarded, invocationLogger, json } = await import('../shared/app/http.js');
  const { confirmUpload } = await import('../shared/pipeline/reconcile.js');
  return guarded(context, async () => {
    const file = request.params.file ?? '';
    if (!/^[\w.-]{1,200}$/.test(file)) return errorResponse(400, 'REQUEST_INVALID', 'The file name is not an import file name.');
    const ctx = await getAppContext();
    const result = await confirmUpload({ blobs: ctx.blobs, tokens: ctx.tokens, clock: ctx.clock, log: invocationLogger(context), importsContainer: ctx.config.containers.imports }, file);
    if (!result.found) return errorResponse(404, 'IMPORT_FILE_NOT_FOUND', `No import file ${JSON.stringify(file)} exists or ever listed tokens.`);
    if (!result.complete) {
      // Some rows changed: not a 500. The file is kept, and the same request again finishes the job.
      const incomplete = errorResponse(503, 'IMPORT_CONFIRM_INCOMPLETE', `Confirmed ${result.imported.length} token(s) of ${JSON.stringify(file)} so far; the file was kept. Send the same request again to finish.`);
      return { ...incomplete, headers: { ...incomplete.headers, 'retry-after': '5' } };
    }
    return json(200, { file, deleted: true, imported: result.imported });
  });
}

app.http('confirmImportUploaded', { methods: ['POST'], route: 'imports/{file}/uploaded', authLevel: 'function', handler: confirmImportUploaded });
