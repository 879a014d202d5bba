import type { FileAnalyser } from './analyser.ts';
import { apkAnalyser } from './apk.ts';
import { dpkgAnalyser } from './dpkg.ts';
import { goAnalyser } from './go.ts';
import { javaAnalyser } from './java.ts';
import { npmAnalyser } from './npm.ts';
import { osReleaseAnalyser } from './os-release.ts';
import { pythonAnalyser } from './python.ts';
import { rpmAnalyser } from './rpm.ts';
import { cargoAuditableAnalyser, cargoLockAnalyser } from './rust.ts';

export { ANALYSER_VERSION, analyseLayer, isSupportedLayerMediaType } from './layer.ts';
export type { AnalyseLayerOptions, LayerResult } from './layer.ts';
export { mergeLayers } from './merge.ts';
export { defaultScanLimits } from './limits.ts';
export type { ScanLimits } from './limits.ts';

/** Every analyser the scanner runs, in the order their facts are merged when two read one file. */
export const allAnalysers: readonly FileAnalyser[] = Object.freeze([
  osReleaseAnalyser,
  dpkgAnalyser,
  apkAnalyser,
  rpmAnalyser,
  npmAnalyser,
  pythonAnalyser,
  goAnalyser,
  javaAnalyser,
  cargoLockAnalyser,
  cargoAuditableAnalyser,
]);
