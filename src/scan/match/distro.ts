/**
 * Which distro advisories apply to an image's OS packages: the OSV ecosystem strings of the
 * image's release (https://ossf.github.io/osv-schema/#affectedpackage-field and the schema's
 * ecosystems.json), the names and versions the advisories use for a package, and how each
 * distro's own severity ratings map onto ECR's severities.
 */
import type { Ecosystem, OsInfo, Package, Severity } from '../types.ts';
import { DEBIAN_CODENAMES } from '../debian-releases.ts';

export type DistroFamily = 'debian' | 'ubuntu' | 'alpine' | 'redhat' | 'rocky' | 'almalinux';

/** One store query: an exact ecosystem, or a prefix whose results `accepts` narrows. */
export type FeedQuery =
  | { kind: 'exact'; ecosystem: string; rank: number }
  | { kind: 'prefix'; prefix: string; accepts: (ecosystem: string) => boolean; rank: number };

export interface DistroFeed {
  family: DistroFamily;
  /** For notes: "Debian 12". */
  label: string;
  /** The package manager whose packages these advisories describe. */
  packageEcosystem: Extract<Ecosystem, 'deb' | 'rpm' | 'apk'>;
  /**
   * The queries, each with a rank: where entries of several ranks name the same package and
   * vulnerability, only the lowest rank's count (Ubuntu's standard archive over Ubuntu Pro).
   */
  queries: FeedQuery[];
}

/** OS ids whose packages OSV has no advisories for: the reason the notes give. */
const NO_FEED: Readonly<Record<string, string>> = {
  centos: 'CentOS has no advisories in OSV',
  fedora: 'Fedora has no advisories in OSV',
  amzn: 'Amazon Linux has no advisories in OSV',
  ol: 'Oracle Linux has no advisories in OSV',
};

/**
 * The advisories for an OS, or the reason there are none. The release is taken from VERSION_ID
 * as the ecosystems name it: Debian's major version, Ubuntu's YY.MM (with ":LTS" for LTS
 * releases, as OSV spells them), Alpine's branch "v3.20", the RHEL family's major version.
 */
export function distroFeed(os: OsInfo | undefined): DistroFeed | { reason: string } {
  if (!os) return { reason: "the image's operating system is unknown" };
  const id = os.id.toLowerCase();
  const versionId = os.versionId.trim();
  const major = /^(\d+)/.exec(versionId)?.[1];
  const unknownRelease = { reason: `the release of ${os.prettyName ?? id} is not recognised (VERSION_ID "${versionId}")` };
  switch (id) {
    case 'debian': {
      const release = major ?? (os.codename ? (DEBIAN_CODENAMES[os.codename.toLowerCase()] ?? os.codename.toLowerCase()) : undefined);
      if (!release) return unknownRelease;
      return { family: 'debian', label: `Debian ${release}`, packageEcosystem: 'deb', queries: [exact(`Debian:${release}`, 0)] };
    }
    case 'ubuntu': {
      const m = /^(\d{2})\.(\d{2})/.exec(versionId);
      if (!m) return unknownRelease;
      const release = `${m[1]}.${m[2]}`;
      // LTS releases are the April releases of even years; OSV requires the ":LTS" suffix on them.
      const lts = Number(m[1]) % 2 === 0 && m[2] === '04';
      const queries: FeedQuery[] = lts
        ? [exact(`Ubuntu:${release}:LTS`, 0), exact(`Ubuntu:${release}`, 0), exact(`Ubuntu:Pro:${release}:LTS`, 1), exact(`Ubuntu:Pro:${release}`, 1)]
        : [exact(`Ubuntu:${release}`, 0), exact(`Ubuntu:Pro:${release}`, 1)];
      return { family: 'ubuntu', label: `Ubuntu ${release}`, packageEcosystem: 'deb', queries };
    }
    case 'alpine': {
      const m = /^(\d+)\.(\d+)/.exec(versionId);
      if (!m) return unknownRelease;
      const branch = `v${m[1]}.${m[2]}`;
      return { family: 'alpine', label: `Alpine ${branch}`, packageEcosystem: 'apk', queries: [exact(`Alpine:${branch}`, 0)] };
    }
    case 'rocky':
      if (!major) return unknownRelease;
      return { family: 'rocky', label: `Rocky Linux ${major}`, packageEcosystem: 'rpm', queries: [exact(`Rocky Linux:${major}`, 0)] };
    case 'almalinux':
      if (!major) return unknownRelease;
      return { family: 'almalinux', label: `AlmaLinux ${major}`, packageEcosystem: 'rpm', queries: [exact(`AlmaLinux:${major}`, 0)] };
    case 'rhel': {
      if (!major) return unknownRelease;
      // Red Hat's ecosystems carry a CPE: "Red Hat:enterprise_linux:9::baseos",
      // "...:9::appstream". Only the main stream of the major release applies to an image;
      // EUS/AUS streams (rhel_eus:9.2) are for subscribers pinned to a minor release.
      const prefix = `Red Hat:enterprise_linux:${major}`;
      const accepts = (ecosystem: string) => ecosystem === prefix || ecosystem.startsWith(`${prefix}:`);
      return { family: 'redhat', label: `Red Hat Enterprise Linux ${major}`, packageEcosystem: 'rpm', queries: [{ kind: 'prefix', prefix, accepts, rank: 0 }] };
    }
    default: {
      const why = NO_FEED[id];
      return { reason: why ?? `no vulnerability feed is known for the operating system "${id}"` };
    }
  }
}

function exact(ecosystem: string, rank: number): FeedQuery {
  return { kind: 'exact', ecosystem, rank };
}

/**
 * The names a distro's advisories may list a package under. Debian, Ubuntu and Alpine name
 * source packages (dpkg's Source, apk's origin). Red Hat's records name binary or source RPMs
 * (osv-schema ecosystems.json), and Rocky's and AlmaLinux's list every binary RPM of an
 * advisory, so for RPM both names are looked up; a binary and its source RPM share a version.
 */
export function advisoryNames(family: DistroFamily, pkg: Package): string[] {
  if (family === 'debian' || family === 'ubuntu' || family === 'alpine') return [pkg.sourceName ?? pkg.name];
  return pkg.sourceName && pkg.sourceName !== pkg.name ? [pkg.name, pkg.sourceName] : [pkg.name];
}

/** The version advisories compare: Debian's and Ubuntu's are source versions (a binNMU's "+b1" is not in them). */
export function advisoryVersion(family: DistroFamily, pkg: Package): string {
  if (family === 'debian' || family === 'ubuntu') return pkg.sourceVersion ?? pkg.version;
  return pkg.version;
}

/** The distro family an OSV ecosystem string belongs to ("Debian:12" -> debian), if any. */
export function familyOfEcosystem(ecosystem: string): DistroFamily | undefined {
  const name = ecosystem.split(':', 1)[0];
  switch (name) {
    case 'Debian':
      return 'debian';
    case 'Ubuntu':
      return 'ubuntu';
    case 'Alpine':
      return 'alpine';
    case 'Red Hat':
      return 'redhat';
    case 'Rocky Linux':
      return 'rocky';
    case 'AlmaLinux':
      return 'almalinux';
    default:
      return undefined;
  }
}

const DEBIAN_URGENCY: Readonly<Record<string, Severity>> = {
  unimportant: 'INFORMATIONAL',
  low: 'LOW',
  medium: 'MEDIUM',
  high: 'HIGH',
  // "not yet assigned" and "end-of-life" are not ratings.
};
const UBUNTU_PRIORITY: Readonly<Record<string, Severity>> = {
  negligible: 'INFORMATIONAL',
  low: 'LOW',
  medium: 'MEDIUM',
  high: 'HIGH',
  critical: 'CRITICAL',
  // "untriaged" is not a rating yet.
};
const RED_HAT_IMPACT: Readonly<Record<string, Severity>> = {
  low: 'LOW',
  moderate: 'MEDIUM',
  important: 'HIGH',
  critical: 'CRITICAL',
};

/**
 * ECR's severity for a distro's own rating, or undefined when the distro has no such rating
 * (Alpine rates nothing; Debian's "not yet assigned" is no rating). Debian urgencies may carry
 * the tracker's "*" marks of uncertainty ("low*"), which do not change the level.
 */
export function distroSeverity(family: DistroFamily, rating: string): Severity | undefined {
  const key = rating.trim().replace(/\*+$/, '').trim().toLowerCase();
  switch (family) {
    case 'debian':
      return DEBIAN_URGENCY[key];
    case 'ubuntu':
      return UBUNTU_PRIORITY[key];
    case 'redhat':
    case 'rocky':
    case 'almalinux':
      return RED_HAT_IMPACT[key];
    case 'alpine':
      return undefined;
  }
}
