/**
 * The scanner's shared vocabulary (docs/scanning.md): what the analysers find in an image
 * (an inventory of packages), what the vulnerability database holds (OSV-shaped records and
 * the packages they affect), and what matching produces (findings). The control plane turns
 * findings into ECR's basic and enhanced shapes; nothing here knows about the wire.
 */

/** The package ecosystems the analysers know, named for their package manager. */
export type Ecosystem = 'deb' | 'rpm' | 'apk' | 'npm' | 'pypi' | 'go' | 'maven' | 'cargo';

/** The operating system of an image, from etc/os-release (or its fallbacks). */
export interface OsInfo {
  /** os-release `ID`, lower case: debian, ubuntu, alpine, rhel, rocky, almalinux, fedora, centos... */
  id: string;
  /** os-release `VERSION_ID` as written: "12", "22.04", "3.20.1", "9.4"; empty when unknown (debian sid). */
  versionId: string;
  /** `VERSION_CODENAME` (bookworm, jammy) when given. */
  codename?: string;
  prettyName?: string;
}

/** A package installed in an image. */
export interface Package {
  ecosystem: Ecosystem;
  /** As the ecosystem names it; Maven: `groupId:artifactId`, as OSV names Maven packages; Go: the module path ("stdlib" for the toolchain). */
  name: string;
  /**
   * The version as its ecosystem spells it, whole: dpkg `[epoch:]upstream[-revision]`, rpm
   * `[epoch:]version-release`, apk `1.2.3-r4`, the others as their metadata writes them.
   */
  version: string;
  /** The source package (dpkg `Source:`, the name in rpm's SOURCERPM, apk's origin) when it differs or is known. */
  sourceName?: string;
  /** The source package's version when it differs from `version` (dpkg `Source: name (version)`). */
  sourceVersion?: string;
  arch?: string;
  /** The file the package was found in: relative to the image root, no leading slash. */
  path: string;
  /** Index of the layer (in the manifest's order) whose file reported it; set when layers are merged. */
  layer?: number;
}

/** What one file of a layer says: the OS, packages, or notes (a database format not read, say). */
export interface FileFacts {
  os?: OsInfo;
  packages?: Package[];
  /** Short sentences for the scan's description, e.g. "var/lib/rpm/Packages: BerkeleyDB rpm database not read". */
  notes?: string[];
}

/**
 * Everything the analysers found in one layer, cached by the layer's diffID and analyserVersion.
 * Paths are normalised: relative to the root, no leading slash, no `.` or `..` parts.
 */
export interface LayerFacts {
  /** ANALYSER_VERSION when it was made; a cached result of another version is not used. */
  analyserVersion: number;
  /**
   * Facts per path, for every regular file an analyser claimed, even those that yielded nothing
   * (an empty object): a file in a higher layer replaces the facts of the same path below it.
   */
  files: Record<string, FileFacts>;
  /** Paths removed by `.wh.<name>` entries (OCI image-spec layer.md): the path and all under it, in lower layers. */
  whiteouts: string[];
  /** Directories marked opaque by `.wh..wh..opq`: everything under them in lower layers is hidden. */
  opaqueDirs: string[];
}

/** The merged result for one image: what the matcher needs, stored per image. */
export interface Inventory {
  os?: OsInfo;
  packages: Package[];
  notes: string[];
}

/** OSV's affected range (https://ossf.github.io/osv-schema/#affectedranges-field). */
export interface AffectedRange {
  type: 'ECOSYSTEM' | 'SEMVER' | 'GIT';
  events: Array<{ introduced?: string; fixed?: string; last_affected?: string; limit?: string }>;
}

/**
 * Where a distro stands on a vulnerability in a package, beyond OSV's ranges (the Debian security
 * tracker): `fixed` (ranges say from which version), `unfixed` (affects every version, no fix yet),
 * `will_not_fix` (affected, the distro will not fix it), `postponed` (affected, fix deferred),
 * `not_affected` (the distro says this release is not affected).
 */
export type AffectedStatus = 'fixed' | 'unfixed' | 'will_not_fix' | 'postponed' | 'not_affected';

/** One package a vulnerability affects, in one ecosystem: the unit the matcher looks up. */
export interface VulnAffected {
  /** The record's id (VulnRecord.id). */
  vulnId: string;
  /**
   * OSV's ecosystem string, exactly: "Debian:12", "Ubuntu:22.04", "Alpine:v3.20", "Rocky Linux:9",
   * "AlmaLinux:9", "Red Hat:enterprise_linux:9::baseos", "npm", "PyPI", "Go", "Maven", "crates.io".
   * The Debian tracker's entries use "Debian:<major>" too.
   */
  ecosystem: string;
  /** The package as the ecosystem names it (Debian and Alpine: the source package; Maven: group:artifact). */
  package: string;
  ranges: AffectedRange[];
  /** Affected versions listed one by one (OSV `versions`). */
  versions: string[];
  /** Absent: decided by ranges and versions alone. */
  status?: AffectedStatus;
  /** The distro's own rating for this package, as written (Debian urgency "low", Ubuntu "medium"...). */
  distroSeverity?: string;
  /** The source it came from: "osv:Debian", "osv:npm", "debian-tracker"... (VulnSource.name). */
  source: string;
}

/** A vulnerability as OSV describes it (https://ossf.github.io/osv-schema/), trimmed to what findings show. */
export interface VulnRecord {
  id: string;
  aliases: string[];
  /** Related ids (OSV `upstream`, `related`). */
  related: string[];
  summary?: string;
  details?: string;
  /** RFC 3339 times as the record gives them. */
  published?: string;
  modified?: string;
  /** OSV `severity`: `{type: "CVSS_V3" | "CVSS_V4" | "CVSS_V2" | "Ubuntu", score: vector or rating}`. */
  severity: Array<{ type: string; score: string }>;
  references: Array<{ type: string; url: string }>;
  source: string;
}

/** One source of the database as imported: replaced whole by the next import of the same name. */
export interface VulnSource {
  /** "osv:Debian", "osv:npm", "debian-tracker"... */
  name: string;
  /** What was read: "OSV all.zip", "Debian security tracker JSON", "bundle <digest>". */
  description: string;
  /** The newest `modified` time in the source (epoch ms), or the export's own time; the database's age is from this. */
  updatedAtMs: number;
  importedAtMs: number;
  recordCount: number;
  /** sha256 of the file read, "sha256:<hex>". */
  sha256: string;
}

/** ECR's severities (FindingSeverity); UNTRIAGED only in enhanced findings. */
export type Severity = 'CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW' | 'INFORMATIONAL' | 'UNDEFINED' | 'UNTRIAGED';

/** A CVSS score as computed from a vector (src/scan/match/cvss.ts). */
export interface CvssScore {
  /** "2.0", "3.0", "3.1", "4.0". */
  version: string;
  vector: string;
  baseScore: number;
}

/** A vulnerability found in one package of one image. */
export interface Finding {
  /** The name findings show: the CVE id when the record has one (its id or an alias), else its own id. */
  name: string;
  /** The record it came from (VulnRecord.id), and the database source. */
  vulnId: string;
  source: string;
  package: Package;
  severity: Severity;
  /** The distro's rating when one was used or given. */
  distroSeverity?: string;
  cvss: CvssScore[];
  /** The first version that fixes it, when known. */
  fixedVersion?: string;
  status: AffectedStatus;
  title: string;
  description: string;
  /** Where a person reads more: the distro's tracker page or the advisory. */
  uri: string;
  references: string[];
  aliases: string[];
  published?: string;
  modified?: string;
}
