import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/** The root logger: JSON lines on stdout. Subsystems take a child: `log.child({ mod: 'dns' })`. */
export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { name: 'meridian' } }, destination ?? pino.destination({ dest: 1, sync: true }))
}
