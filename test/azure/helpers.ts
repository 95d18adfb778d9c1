// Local services for the Azure adapter tests: Azurite (dev/azurite.ts) and the Key Vault stand-in
// (dev/keyvault/server.ts), each in a temp folder on free ports, plus a tiny HTTP server that always fails.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzurite, type Azurite } from '../../dev/azurite.js';
import { startKeyVaultStandIn, type KeyVaultRealism, type KeyVaultStandIn } from '../../dev/keyvault/server.js';
import { loadConfig, type PipelineConfig } from '../../shared/config.js';

export async function startTestAzurite(): Promise<Azurite> {
  const dataDir = await mkdtemp(join(tmpdir(), 'eop-azurite-'));
  try {
    const azurite = await startAzurite({ dataDir, ports: 'free' });
    return {
      ...azurite,
      close: async () => {
        await azurite.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

export function startTestVault(realism?: KeyVaultRealism): Promise<KeyVaultStandIn> {
  return startKeyVaultStandIn({ port: 0, realism });
}

/** The pipeline's config for a connection string and a vault URL, through the same loader the app uses. */
export function testConfig(connectionString: string, keyVaultUrl: string, extra: Record<string, string> = {}): PipelineConfig {
  return loadConfig({ PipelineStorage: connectionString, KEY_VAULT_URL: keyVaultUrl, ...extra });
}

export interface FailingServer {
  url: string;
  port: number;
  requests: number;
  /** TCP connections accepted, whatever came over them (a TLS handshake to this plain HTTP server counts too). */
  connections: number;
  close(): Promise<void>;
}

/** Answers every request with `status` and the given headers: a service that is overloaded or down. */
export async function startFailingServer(status: number, headers: Record<string, string> = {}): Promise<FailingServer> {
  const state = { requests: 0, connections: 0 };
  const server = http.createServer((req, res) => {
    state.requests++;
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json', 'x-ms-error-code': 'ServerBusy', ...headers });
    res.end(JSON.stringify({ error: { code: 'ServerBusy', message: 'Injected failure.' } }));
  });
  server.on('connection', () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return state.requests;
    },
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function uniqueName(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}`;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
