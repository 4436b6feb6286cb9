#!/usr/bin/env node
// Installs the Debian tools the test suite drives (dig from bind9-dnsutils) when they are missing.
// Runs before `npm test`; needs root and apt-get, as on the project's Debian machines.
import { execFileSync, spawnSync } from 'node:child_process'

const wanted = [
  { bin: 'dig', pkg: 'bind9-dnsutils' },
  // a real recursive resolver for the delegation test; started by the test itself, never as a service
  { bin: 'unbound', pkg: 'unbound' },
  // an exFAT file system (no hard links) for the zone-create test; it skips where it cannot mount one
  { bin: 'mkfs.exfat', pkg: 'exfatprogs' },
  { bin: 'mount.exfat-fuse', pkg: 'exfat-fuse' },
  // find's clock moved on 31 days, to run the documented prune of .meridian/deleted/ (skipped without)
  { bin: 'faketime', pkg: 'faketime' },
]
const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin}`], { stdio: 'ignore' }).status === 0
const missing = wanted.filter((w) => !has(w.bin))
if (missing.length > 0) {
  const pkgs = [...new Set(missing.map((m) => m.pkg))]
  console.log(`ensure-tools: installing ${pkgs.join(' ')} (needed by the tests)`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env })
  } catch (err) {
    console.error(`ensure-tools: could not install ${pkgs.join(' ')}: ${err.message}. Install them by hand (apt-get install ${pkgs.join(' ')}) and run the tests again.`)
    process.exit(1)
  }
  const still = missing.filter((w) => !has(w.bin))
  if (still.length > 0) {
    console.error(`ensure-tools: still missing after install: ${still.map((s) => s.bin).join(', ')}`)
    process.exit(1)
  }
}
