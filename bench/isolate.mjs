/**
 * Keeps the measured server's CPUs for the server: for the time of a bench run, the kernel's threads
 * that may run on any CPU (kdamond, kcompactd, khugepaged, rcu_preempt, unbound kworkers, ...) are
 * moved to the load generator's CPUs, and put back afterwards (run.mjs pins its own threads there).
 *
 * Why: pinning the server to CPU 0 keeps it off CPU 1, not the others off CPU 0. On this VM the
 * kernel's DAMON thread (kdamond) woke on the server's CPU ~2 times a second and held it 1.6-3.4 ms
 * each time (docs/benchmarks.md, session 12: `perf record -C 0`): every query that came meanwhile
 * waited, which is the p99 at half load. The reference is measured under the same isolation.
 * Per-CPU kernel threads (ksoftirqd/0, migration/0, kworker/0:*) cannot move (the kernel says so,
 * PF_NO_SETAFFINITY) and stay; so do other users' processes (the bench warns when the machine is
 * not idle). Linux only; needs the right to change other tasks' affinity (root: CAP_SYS_NICE).
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

const PF_KTHREAD = 0x00200000
const PF_NO_SETAFFINITY = 0x04000000

/** A task's name, flags and allowed CPUs as /proc says (null when it is gone). */
function task(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    // After the name: state, ppid, pgrp, session, tty_nr, tpgid, flags.
    const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6])
    const cpus = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null
    return { pid, comm, flags, cpus }
  } catch {
    return null
  }
}

/** `taskset -p -c cpus pid`; true when it took. */
function setAffinity(pid, cpus) {
  return spawnSync('taskset', ['-p', '-c', cpus, String(pid)], { stdio: 'ignore' }).status === 0
}

/**
 * Moves the movable kernel threads whose allowed CPUs are all of them (`allCpus`, e.g. "0-1") to
 * `to`. Returns their names, and restore() that puts each back (safe to call twice; a task gone
 * meanwhile is skipped).
 */
export function isolate(to, allCpus) {
  const moved = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const t = task(Number(name))
    if (t === null || !(t.flags & PF_KTHREAD) || t.flags & PF_NO_SETAFFINITY || t.cpus !== allCpus) continue
    if (setAffinity(t.pid, to)) moved.push(t)
  }
  let restored = false
  return {
    kernelThreads: moved.map((t) => t.comm),
    restore() {
      if (restored) return
      restored = true
      for (const t of moved) {
        const now = task(t.pid)
        // The same task (pids are reused): same name, and still where we put it.
        if (now !== null && now.comm === t.comm) setAffinity(t.pid, t.cpus)
      }
    },
  }
}
