/**
 * Debian release codenames to the major version that os-release's VERSION_ID and OSV's
 * ecosystem names use ("Debian:12"): the tracker names releases by codename, and images of
 * testing name only theirs. sid (unstable) has no version and is left out.
 */
export const DEBIAN_CODENAMES: Readonly<Record<string, string>> = Object.freeze({
  wheezy: '7',
  jessie: '8',
  stretch: '9',
  buster: '10',
  bullseye: '11',
  bookworm: '12',
  trixie: '13',
  forky: '14',
  duke: '15',
});
