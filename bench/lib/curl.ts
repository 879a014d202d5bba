import { runTool } from './proc.ts';

export const CURL_BIN = 'curl';

/**
 * GETs every URL at once with one curl process (--parallel), discarding the bodies, and checks
 * each status and size. A second client for the pull figures: Node's HTTP client tops out near
 * the speed nginx serves at, so the node:http figures understate how far ahead nginx is.
 * `headers` go with every transfer (e.g. Berth's Authorization).
 */
export async function curlPull(urls: string[], expectedBytes: number[], headers: Record<string, string> = {}): Promise<number> {
  const args = ['-s', '--parallel', '--parallel-immediate', '--parallel-max', String(urls.length), '-w', '%{http_code} %{size_download}\\n'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  for (const url of urls) args.push('-o', '/dev/null', url);
  const out = await runTool(CURL_BIN, args);
  const lines = out.trim().split('\n');
  if (lines.length !== urls.length) throw new Error(`curl reported ${lines.length} transfers, wanted ${urls.length}`);
  // --parallel reports transfers in completion order; compare as multisets.
  const got = lines.map((l) => l.split(' ')).map(([status, size]) => ({ status: Number(status), size: Number(size) }));
  const bad = got.find((g) => g.status !== 200);
  if (bad) throw new Error(`curl: a transfer answered ${bad.status}`);
  const sizes = got.map((g) => g.size).sort((a, b) => a - b);
  const wanted = [...expectedBytes].sort((a, b) => a - b);
  if (sizes.some((s, i) => s !== wanted[i])) throw new Error(`curl: sizes ${sizes.join(',')} differ from ${wanted.join(',')}`);
  return sizes.reduce((a, b) => a + b, 0);
}
