import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  randomBytes,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/** A public key as verifiers know it: by its `kid`. */
export interface VerificationKey {
  /** RFC 7638 thumbprint of the key: every replica given the same key derives the same kid. */
  kid: string;
  key: KeyObject;
  /** As the JWKS publishes it. */
  jwk: JsonWebKey;
}

export interface SigningKeys {
  privateKey: string;
  publicKey: string;
  /** RFC 7638 thumbprint of the public key; goes into each token's header and the JWKS. */
  kid: string;
  jwk: JsonWebKey;
  /**
   * Every key a token may be signed with: the signing key first, then the
   * extra public keys (JWT_EXTRA_PUBLIC_KEYS) — during a rotation, the next
   * key before it signs and the previous one until its tokens expire. All are
   * published in the JWKS and accepted by the verifiers.
   */
  verification: VerificationKey[];
}

/** The pair toko generates when none is configured: RSA 2048 (RS256), PEM. */
const GENERATED = {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
} as const;

interface KeyOptions {
  privateKey?: string;
  publicKey?: string;
  extraPublicKeys?: string[];
  dataDir: string;
}

const keyFiles = (dataDir: string) => {
  const dir = path.join(dataDir, 'keys');
  return { dir, privPath: path.join(dir, 'jwt-private.pem'), pubPath: path.join(dir, 'jwt-public.pem') };
};

/**
 * Keeps a generated private key under the data directory. Replicas sharing the directory (a Compose volume) may
 * start at once: the first private key to land is everyone's. It appears whole (written aside, then linked,
 * which fails if one is there), and the public key is derived from it, so any replica may write that.
 */
function keep(dataDir: string, privateKey: string): void {
  const { dir, privPath } = keyFiles(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeAtomically(privPath, privateKey, 0o600, 'link');
}

/** Whether `loadSigningKeys` would have to generate a pair: none configured and none kept yet. */
export const signingKeysMissing = (opts: KeyOptions) =>
  !(opts.privateKey && opts.publicKey) && !existsSync(keyFiles(opts.dataDir).privPath);

/**
 * On a first start, generates the pair `loadSigningKeys` would otherwise generate on the main thread, on the
 * thread pool instead, so that it runs while the process waits for its database (80–240 ms of RSA); resolves
 * at once when keys are configured or kept already. The extra public keys are checked, and the key directory
 * made and checked writable, before it returns: either wrong fails the start there, not after the database
 * opened. (A write that fails later, a full disk, still fails the start, once the databases are open.)
 */
export function generateSigningKeys(opts: KeyOptions): Promise<void> {
  if (!signingKeysMissing(opts)) return Promise.resolve();
  for (const pem of opts.extraPublicKeys ?? []) verificationKey(pem, 'JWT_EXTRA_PUBLIC_KEYS');
  const { dir } = keyFiles(opts.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  accessSync(dir, constants.W_OK);
  return promisify(generateKeyPair)('rsa', GENERATED).then(({ privateKey }) => keep(opts.dataDir, privateKey));
}

/**
 * Keys from configuration, or, when none are configured, a pair generated
 * once and kept under the data directory so tokens survive restarts.
 */
export function loadSigningKeys(opts: KeyOptions): SigningKeys {
  const extra = opts.extraPublicKeys ?? [];
  if (opts.privateKey && opts.publicKey) return describe(opts.privateKey, opts.publicKey, extra);
  const { privPath, pubPath } = keyFiles(opts.dataDir);
  if (signingKeysMissing(opts)) keep(opts.dataDir, generateKeyPairSync('rsa', GENERATED).privateKey);
  const privateKey = readFileSync(privPath, 'utf8');
  // The public key is always the private key's own: one missing, or left from an older private key, is rewritten.
  const publicKey = createPublicKey(createPrivateKey(privateKey)).export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(pubPath) || readFileSync(pubPath, 'utf8') !== publicKey)
    writeAtomically(pubPath, publicKey, 0o644, 'rename');
  return describe(privateKey, publicKey, extra);
}

/** Writes `file` whole or not at all: beside it first, then linked (kept if one is there already) or renamed over it. */
function writeAtomically(file: string, text: string, mode: number, how: 'link' | 'rename'): void {
  const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(aside, text, { mode });
  try {
    if (how === 'rename') renameSync(aside, file);
    else linkSync(aside, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(aside, { force: true });
  }
}

function describe(privateKey: string, publicKey: string, extra: string[]): SigningKeys {
  const signing = verificationKey(publicKey, 'JWT_PUBLIC_KEY');
  const derived = createPublicKey(createPrivateKey(privateKey)).export({ format: 'jwk' });
  if (derived.n !== signing.jwk.n || derived.e !== signing.jwk.e)
    throw new Error('JWT_PUBLIC_KEY does not match JWT_PRIVATE_KEY');
  const verification = [signing];
  for (const pem of extra) {
    const k = verificationKey(pem, 'JWT_EXTRA_PUBLIC_KEYS');
    // The signing key listed again (a rotation's last step done early) is published once.
    if (!verification.some((v) => v.kid === k.kid)) verification.push(k);
  }
  return { privateKey, publicKey, kid: signing.kid, jwk: signing.jwk, verification };
}

function verificationKey(pem: string, variable: string): VerificationKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new Error(`${variable} holds a key that cannot be read as a PEM public key`);
  }
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA') throw new Error(`JWT keys must be RSA keys (RS256); ${variable} holds a ${jwk.kty} key`);
  const kid = createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest('base64url');
  return { kid, key, jwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } };
}
