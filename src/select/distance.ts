import { greatCircleKm } from '../model/gslb.js'

export { greatCircleKm }

/**
 * The fibre round-trip model: light in fibre covers about 200 km per ms, real routes run about 1.5x
 * the great circle, and every path pays a few ms in the last mile and the pool:
 *   rtt_ms = 5 + 2 * 1.5 * distance_km / 200   (London-Dublin ~ 12 ms, London-Virginia ~ 95 ms,
 *                                               London-Tokyo ~ 150 ms)
 */
export const FIBRE = { baseMs: 5, routeFactor: 1.5, kmPerMs: 200 } as const

export function fibreRttMs(distanceKm: number): number {
  return FIBRE.baseMs + (2 * FIBRE.routeFactor * distanceKm) / FIBRE.kmPerMs
}
