/**
 * health/ — active health checks of the regions' VIPs and the HealthView the selector reads.
 *
 * Owns: the check spec and its stable key (spec.ts), one `Check` contract with HTTP(S) (undici,
 * a new connection per round, a timeout that really aborts) and TCP-connect implementations (check.ts), a pure
 * rise/fall state machine with an RTT EWMA (state.ts, truth table at its top), and the poller
 * (poller.ts): one schedule per key, setTimeout chains that never overlap, a random start inside
 * the first interval, state changes logged with their reason (`log.child({ mod: 'health' })`) and
 * announced to listeners, states saved atomically and restored after a restart.
 *
 * Config (CheckSpec; defaults in CHECK_DEFAULTS): kind http|https|tcp, address (the VIP) and
 * port, or url (`{vip}` expanded by the caller); path `/healthz`; host header; method GET|HEAD;
 * expect [200]; body substring; servername (SNI); verify true; intervalMs 5000; timeoutMs 2000
 * (< intervalMs); rise 2; fall 3. A new target is `unknown` until `rise` successes (-> up) or
 * `fall` failures (-> down).
 *
 * Example:
 *   const poller = new HealthPoller({ log })
 *   await poller.loadState('zones/.meridian-health.json')
 *   const [eu] = poller.setTargets([{ kind: 'http', address: '127.0.1.1', port: 8080, host: 'www.example.test' }])
 *   poller.onChange((view, changes) => log.info({ changes }))   // told of state changes only
 *   poller.view().generation   // moves on state changes, target changes and significant EWMA moves:
 *                              // the DNS answer cache compares it on every lookup
 *   poller.view().targets.get(eu)  // { state: 'up', since, lastLatencyMs, ewmaMs, lastError, transitions, ... }
 *   await poller.saveState('zones/.meridian-health.json'); await poller.close()
 *
 * Logs: `health: <key> is up|down` (info/warn) with from, to, reason. Metrics: through onResult (cli.ts).
 */
export { checkKey, resolveSpec, CHECK_DEFAULTS, type CheckKind, type CheckSpec, type ResolvedSpec } from './spec.js'
export { createCheck, errorText, RoundClients, HttpCheck, TcpCheck, type Check } from './check.js'
export {
  EWMA_ALPHA,
  MAX_TRANSITIONS,
  initialHealth,
  next,
  parseSaved,
  toSaved,
  type CheckResult,
  type HealthState,
  type SavedHealth,
  type TargetHealth,
  type Transition,
} from './state.js'
export { HEALTH_SAVE_EVERY_MS, HEALTH_STATE_MAX_AGE_S, HealthPoller, type ChangeListener, type HealthGenerations, type HealthView, type PollerOptions, type StateChange, type Timers } from './poller.js'
