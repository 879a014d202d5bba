import type { FileFacts, Inventory, LayerFacts, OsInfo, Package } from '../types.ts';

/**
 * Which file's OS wins when several survive the merge. os-release(5): /etc/os-release takes
 * precedence over /usr/lib/os-release (and is often a symlink to it, which the walker does not
 * follow, so the usr/lib one is then the only one read). The legacy files come after, the
 * distribution's own before the generic: Ubuntu ships etc/debian_version too ("bookworm/sid"),
 * so lsb-release outranks it; Rocky and Alma keep redhat-release as a link to their own file.
 */
const osPrecedence = [
  'etc/os-release',
  'usr/lib/os-release',
  'etc/lsb-release',
  'etc/alpine-release',
  'etc/rocky-release',
  'etc/almalinux-release',
  'etc/centos-release',
  'etc/fedora-release',
  'etc/redhat-release',
  'etc/debian_version',
];

function osRank(path: string): number {
  const rank = osPrecedence.indexOf(path);
  return rank === -1 ? osPrecedence.length : rank;
}

/**
 * Applies the layers in manifest order as a container runtime would unpack them (OCI image-spec
 * layer.md, "Applying Changesets"): each layer's whiteouts and opaque directories hide what the
 * layers below left, then its own files replace facts at the same paths. The result is the image's
 * inventory: its OS, every package with the index of the layer whose file reported it, and notes.
 */
export function mergeLayers(layers: LayerFacts[]): Inventory {
  const survivors = new Map<string, { facts: FileFacts; layer: number }>();
  layers.forEach((layer, index) => {
    for (const whiteout of layer.whiteouts) {
      for (const path of survivors.keys()) if (path === whiteout || path.startsWith(`${whiteout}/`)) survivors.delete(path);
    }
    for (const dir of layer.opaqueDirs) {
      // The directory itself stays; only what lower layers put under it is hidden.
      for (const path of survivors.keys()) if (dir === '' || path.startsWith(`${dir}/`)) survivors.delete(path);
    }
    for (const [path, facts] of Object.entries(layer.files)) survivors.set(path, { facts, layer: index });
  });

  const paths = [...survivors.keys()].sort();
  let os: OsInfo | undefined;
  let osPath: string | undefined;
  const packages: Package[] = [];
  const notes: string[] = [];
  for (const path of paths) {
    const { facts, layer } = survivors.get(path)!;
    if (facts.os && (osPath === undefined || osRank(path) < osRank(osPath))) {
      os = facts.os;
      osPath = path;
    }
    for (const pkg of facts.packages ?? []) packages.push({ ...pkg, layer });
    for (const note of facts.notes ?? []) if (!notes.includes(note)) notes.push(note);
  }

  packages.sort(comparePackages);
  const unique = packages.filter((pkg, i) => i === 0 || comparePackages(packages[i - 1]!, pkg) !== 0);
  return os ? { os, packages: unique, notes } : { packages: unique, notes };
}

function comparePackages(a: Package, b: Package): number {
  return compare(a.ecosystem, b.ecosystem) || compare(a.name, b.name) || compare(a.version, b.version) || compare(a.path, b.path);
}

// Code-unit order, not locale order: the inventory must sort the same on every machine.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
