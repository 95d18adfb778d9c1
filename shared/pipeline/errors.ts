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
  constructor(readonly secretName: string, readonly beingDeleted = false) {
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
