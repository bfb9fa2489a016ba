import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface SigningKeys {
  privateKey: string;
  publicKey: string;
  /** RFC 7638 thumbprint of the public key; goes into each token's header and the JWKS. */
  kid: string;
  jwk: JsonWebKey;
}

/**
 * Keys from configuration, or, when none are configured, a pair generated
 * once and kept under the data directory so tokens survive restarts.
 */
export function loadSigningKeys(opts: { privateKey?: string; publicKey?: string; dataDir: string }): SigningKeys {
  if (opts.privateKey && opts.publicKey) return describe(opts.privateKey, opts.publicKey);
  const dir = path.join(opts.dataDir, 'keys');
  const privPath = path.join(dir, 'jwt-private.pem');
  const pubPath = path.join(dir, 'jwt-public.pem');
  if (!existsSync(privPath) || !existsSync(pubPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    writeFileSync(privPath, pair.privateKey, { mode: 0o600 });
    writeFileSync(pubPath, pair.publicKey, { mode: 0o644 });
  }
  return describe(readFileSync(privPath, 'utf8'), readFileSync(pubPath, 'utf8'));
}

function describe(privateKey: string, publicKey: string): SigningKeys {
  const pub = createPublicKey(publicKey);
  const derived = createPublicKey(createPrivateKey(privateKey)).export({ format: 'jwk' });
  const jwk = pub.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA') throw new Error('JWT keys must be RSA keys (RS256)');
  if (derived.n !== jwk.n || derived.e !== jwk.e) throw new Error('JWT_PUBLIC_KEY does not match JWT_PRIVATE_KEY');
  const kid = createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest('base64url');
  return { privateKey, publicKey, kid, jwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } };
}
