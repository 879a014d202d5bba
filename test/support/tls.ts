import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from './tools.ts';

export interface TestPki {
  dir: string;
  /** The test CA certificate (PEM). */
  caFile: string;
  /** Server certificate for 127.0.0.1 and localhost, signed by the CA. */
  certFile: string;
  keyFile: string;
  /** A directory holding only the CA as ca.crt, the shape --cert-dir (skopeo, podman) expects. */
  certDir: string;
  /** Start flags that make Berth serve HTTPS with this certificate. */
  serverArgs: string[];
  close(): Promise<void>;
}

/**
 * A throwaway CA and a server certificate for IP:127.0.0.1 (and DNS:localhost), made with the
 * openssl CLI in a temp directory. P-256 keys: quick to make, and accepted by Go clients.
 */
export async function makeTestPki(): Promise<TestPki> {
  const dir = path.join(tmpdir(), `berth-pki-${randomBytes(6).toString('hex')}`);
  const certDir = path.join(dir, 'certs.d');
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  const f = (name: string) => path.join(dir, name);
  const openssl = (args: string[]) => run('openssl', args, { timeoutMs: 30_000 });
  await openssl([
    'req', '-x509', '-new', '-nodes',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2',
    '-subj', '/CN=Berth test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await openssl([
    'req', '-new', '-nodes',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-keyout', f('server.key'), '-out', f('server.csr'),
    '-subj', '/CN=127.0.0.1',
  ]);
  await writeFile(
    f('server.ext'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  await openssl([
    'x509', '-req', '-in', f('server.csr'),
    '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('server.crt'), '-days', '2', '-sha256', '-extfile', f('server.ext'),
  ]);
  await copyFile(f('ca.crt'), path.join(certDir, 'ca.crt'));
  return {
    dir,
    caFile: f('ca.crt'),
    certFile: f('server.crt'),
    keyFile: f('server.key'),
    certDir,
    serverArgs: ['--tls-cert', f('server.crt'), '--tls-key', f('server.key')],
    async close() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
