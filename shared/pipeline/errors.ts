/** Typed failures of the storage and vault adapters, so services decide without knowing the SDKs. */

export class TransientError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TransientError';
  }
}

export class SecretDeletedError extends Error {
  constructor(
    readonly secretName: string,
    readonly beingDeleted = false,
  ) {
    super(`Secret ${secretName} is ${beingDeleted ? 'being deleted' : 'deleted but recoverable'} in Key Vault.`);
    this.name = 'SecretDeletedError';
  }
}

export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

export class PreconditionFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreconditionFailedError';
  }
}

export class BlobExistsError extends Error {
  constructor(readonly blobName: string) {
    super(`Blob ${blobName} already exists.`);
    this.name = 'BlobExistsError';
  }
}

/**
 * A write that may or may not have been applied (timed out, connection dropped, or a 5xx after sending). Retrying
 * it blindly could apply it twice: read the current state first.
 */
export class UncertainOutcomeError extends TransientError {
  constructor(message: string, status?: number, retryAfterMs?: number) {
    super(message, status, retryAfterMs);
    this.name = 'UncertainOutcomeError';
  }
}

/** The directory (Microsoft Graph) refused a request for a reason a retry will not fix. Never holds a secret. */
export class DirectoryRefusedError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** The service's error code, e.g. "badRequest", "Authorization_RequestDenied". */
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'DirectoryRefusedError';
  }
}
