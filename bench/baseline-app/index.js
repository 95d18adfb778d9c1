// The smallest @azure/functions v4 app: one HTTP function. The cold-start baseline.
import { app } from '@azure/functions';

app.http('hello', {
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: () => Promise.resolve({ body: 'hello' }),
});
