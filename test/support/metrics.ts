import assert from 'node:assert/strict';
import type { TestServer } from './server.ts';

/** The metrics endpoint the server announced (`metrics.listen`), parsed into `name{labels}` → value. */
export async function scrapeMetrics(server: TestServer): Promise<Map<string, number>> {
  const url = server.logs.find((l) => l['msg'] === 'listening')?.['metricsUrl'] as string | undefined;
  assert.ok(url, 'the server announces its metrics URL');
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    samples.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return samples;
}
