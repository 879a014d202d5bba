import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planParts, type PlanSegment, type PlannedPart } from './part-plan.ts';

// Small units keep the cases readable: parts of at least 5 and at most 50, streamed ones of 8.
const limits = { minPartBytes: 5, maxPartBytes: 50, partBytes: 8 };

function segments(...lengths: number[]): PlanSegment[] {
  let at = 0;
  return lengths.map((length) => ({ start: at, end: (at += length) }));
}

function shape(parts: PlannedPart[]): string[] {
  return parts.map((p) => `${p.copyOf === undefined ? 's' : `c${p.copyOf}`}:${p.start}-${p.end}`);
}

/** The properties S3 checks, and that the parts cover the blob exactly once, in order. */
function assertValid(segs: PlanSegment[], parts: PlannedPart[]): void {
  let at = 0;
  parts.forEach((p, i) => {
    assert.equal(p.partNumber, i + 1);
    assert.equal(p.start, at, 'parts are contiguous');
    assert.ok(p.end > p.start, 'no empty part');
    if (i < parts.length - 1) assert.ok(p.end - p.start >= limits.minPartBytes, `part ${p.partNumber} is at least the minimum`);
    assert.ok(p.end - p.start <= limits.maxPartBytes);
    if (p.copyOf === undefined) assert.ok(p.end - p.start <= limits.partBytes);
    else assert.ok(p.start >= segs[p.copyOf]!.start && p.end <= segs[p.copyOf]!.end, 'a copy lies within its segment');
    at = p.end;
  });
  assert.equal(at, segs.at(-1)?.end ?? 0, 'the parts cover the blob');
}

test('small chunks are streamed in parts of partBytes, the last shorter', () => {
  const segs = segments(3, 3, 3, 3, 3, 1);
  const parts = planParts(segs, { ...limits, copyThresholdBytes: 10 });
  assertValid(segs, parts);
  assert.deepEqual(shape(parts), ['s:0-8', 's:8-16']);
});

test('a long chunk is copied; a short run before it is topped up to the minimum from it', () => {
  const segs = segments(2, 30, 4);
  const parts = planParts(segs, { ...limits, copyThresholdBytes: 10 });
  assertValid(segs, parts);
  assert.deepEqual(shape(parts), ['s:0-5', 'c1:5-32', 's:32-36']);
});

test('a chunk too short to copy after the top-up is streamed', () => {
  const segs = segments(2, 12);
  const parts = planParts(segs, { ...limits, copyThresholdBytes: 10 });
  assertValid(segs, parts);
  assert.deepEqual(shape(parts), ['s:0-8', 's:8-14']);
});

test('a chunk longer than the largest part is copied in even pieces', () => {
  const segs = segments(120);
  const parts = planParts(segs, { ...limits, copyThresholdBytes: 10 });
  assertValid(segs, parts);
  assert.deepEqual(shape(parts), ['c0:0-40', 'c0:40-80', 'c0:80-120']);
});

test('copyThresholdBytes Infinity streams everything; no chunks, no parts', () => {
  const segs = segments(30, 30);
  const parts = planParts(segs, { ...limits, copyThresholdBytes: Infinity });
  assertValid(segs, parts);
  assert.ok(parts.every((p) => p.copyOf === undefined));
  assert.deepEqual(planParts([], { ...limits, copyThresholdBytes: 10 }), []);
});

test('every mix of chunk sizes gives a valid plan', () => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 70;
  for (let round = 0; round < 500; round++) {
    const segs = segments(...Array.from({ length: 1 + (round % 9) }, () => 1 + next()));
    for (const copyThresholdBytes of [1, 5, 10, 33, Infinity]) assertValid(segs, planParts(segs, { ...limits, copyThresholdBytes }));
  }
});
