/**
 * Which processes hold some files open for writing, read from /proc (Linux). The file store does
 * not read a zone file while it is being written in place (`cp new.yaml zones/x.yaml` truncates it
 * and then writes it; `curl -o`, `scp`, `cat >` write it as the bytes come), so a half-written
 * file is never served, however long its writer pauses: no event says when a write ends (fs.watch
 * reports no close), but a file no process holds open for writing is whole.
 *
 * It sees the processes this one may inspect: all of them as root, else those of its own user, in
 * its PID namespace. Elsewhere (no /proc, another user's `cp`, a writer in another container) it
 * finds none, and the watcher's quiet period is all there is.
 *
 * Example: `await openForWriting(['zones/a.yaml'])` -> `[{ file: 'zones/a.yaml', pid: 4242, command: 'cp' }]`
 */
import { readdir, readFile, readlink, realpath } from 'node:fs/promises'

export interface Writer {
  /** The file as it was asked about. */
  file: string
  pid: number
  /** The process's command name (/proc/PID/comm), for the log. */
  command: string
}

/** How many processes are looked at together: a host has hundreds, with thousands of descriptors. */
const BATCH = 32

/** The processes that hold one of `files` (followed through links) open for writing; none where /proc cannot tell. */
export async function openForWriting(files: readonly string[], proc = '/proc'): Promise<Writer[]> {
  const byTarget = new Map<string, string>()
  for (const f of files) {
    const real = await realpath(f).catch(() => undefined)
    if (real !== undefined) byTarget.set(real, f)
  }
  if (byTarget.size === 0) return []
  const pids = await readdir(proc).then(
    (names) => names.filter((n) => /^\d+$/.test(n)),
    () => [] as string[],
  )
  const out: Writer[] = []
  for (let i = 0; i < pids.length; i += BATCH) {
    await Promise.all(pids.slice(i, i + BATCH).map((pid) => writersIn(proc, pid, byTarget, out)))
  }
  return out
}

/** Adds to `out` each descriptor of process `pid` open for writing on one of the targets. */
async function writersIn(proc: string, pid: string, byTarget: ReadonlyMap<string, string>, out: Writer[]): Promise<void> {
  // Another user's process, or one gone since the listing: nothing to see.
  const fds = await readdir(`${proc}/${pid}/fd`).catch(() => [] as string[])
  for (const fd of fds) {
    const target = await readlink(`${proc}/${pid}/fd/${fd}`).catch(() => undefined)
    const file = target === undefined ? undefined : byTarget.get(target)
    if (file === undefined) continue
    // `flags:` is octal; its low two bits are the access mode: 1 O_WRONLY, 2 O_RDWR (0: read only).
    const info = await readFile(`${proc}/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '')
    const flags = /^flags:\s*([0-7]+)$/m.exec(info)?.[1]
    if (flags === undefined || (parseInt(flags, 8) & 3) === 0) continue
    if (out.some((w) => w.pid === Number(pid) && w.file === file)) continue
    const command = (await readFile(`${proc}/${pid}/comm`, 'utf8').catch(() => '?')).trim()
    out.push({ file, pid: Number(pid), command })
  }
}
