/**
 * Version comparators, one per ordering scheme, chosen by the matcher from an OSV ecosystem.
 *
 * compareVersions() never throws. Each scheme's fallback for an unparsable version:
 * - deb, rpm, apk, maven: the ecosystem's own algorithm already orders any string, and is applied
 *   as is (dpkg: a non-numeric epoch is not an epoch; apk: the first malformed token sorts before
 *   any well-formed one, as apk does; rpm: the empty string sorts first).
 * - semver, pep440: an unparsable version sorts before every valid one; two unparsable versions
 *   compare as plain strings (UTF-16 code units).
 * The matcher is expected to skip versions isValidVersion() rejects rather than lean on that order.
 */
import { compareApk, isValidApk } from './apk.ts';
import { compareDeb, isValidDeb } from './dpkg.ts';
import { compareMaven, isValidMaven } from './maven.ts';
import { comparePep440, isValidPep440 } from './pep440.ts';
import { compareRpm, isValidRpm } from './rpm.ts';
import { compareSemver, isValidSemver } from './semver.ts';

export type VersionScheme = 'deb' | 'rpm' | 'apk' | 'semver' | 'pep440' | 'maven';

const SCHEMES: Record<VersionScheme, { compare(a: string, b: string): -1 | 0 | 1; isValid(v: string): boolean }> = {
  deb: { compare: compareDeb, isValid: isValidDeb },
  rpm: { compare: compareRpm, isValid: isValidRpm },
  apk: { compare: compareApk, isValid: isValidApk },
  semver: { compare: compareSemver, isValid: isValidSemver },
  pep440: { compare: comparePep440, isValid: isValidPep440 },
  maven: { compare: compareMaven, isValid: isValidMaven },
};

/** -1, 0 or 1. Never throws: an unparsable version compares by the fallback described above. */
export function compareVersions(scheme: VersionScheme, a: string, b: string): -1 | 0 | 1 {
  return SCHEMES[scheme].compare(a, b);
}

/** Whether `v` is a valid version of the scheme (for the matcher to skip garbage). */
export function isValidVersion(scheme: VersionScheme, v: string): boolean {
  return SCHEMES[scheme].isValid(v);
}

/**
 * OSV ecosystem names (https://ossf.github.io/osv-schema/#affectedpackage-field), before the first
 * ':' that adds a release ("Debian:12", "Red Hat:enterprise_linux:9::baseos"), and the order their
 * versions follow. Distributions built on apk or rpm use those tools' order.
 */
const ECOSYSTEM_SCHEMES: Record<string, VersionScheme> = {
  Debian: 'deb',
  Ubuntu: 'deb',
  Alpine: 'apk',
  Wolfi: 'apk',
  Chainguard: 'apk',
  MinimOS: 'apk',
  'Red Hat': 'rpm',
  'Rocky Linux': 'rpm',
  AlmaLinux: 'rpm',
  openSUSE: 'rpm',
  SUSE: 'rpm',
  Mageia: 'rpm',
  openEuler: 'rpm',
  'Azure Linux': 'rpm',
  npm: 'semver',
  Go: 'semver',
  'crates.io': 'semver',
  PyPI: 'pep440',
  Maven: 'maven',
};

/** The scheme an OSV ecosystem's versions follow; undefined for ecosystems we do not order. */
export function schemeOfEcosystem(osvEcosystem: string): VersionScheme | undefined {
  const colon = osvEcosystem.indexOf(':');
  const base = (colon < 0 ? osvEcosystem : osvEcosystem.slice(0, colon)).trim();
  return Object.hasOwn(ECOSYSTEM_SCHEMES, base) ? ECOSYSTEM_SCHEMES[base] : undefined;
}
