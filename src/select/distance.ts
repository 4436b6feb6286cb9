import type { GeoPoint } from '../model/gslb.js'

const EARTH_RADIUS_KM = 6371

/** Great-circle distance (haversine), in km. */
export function greatCircleKm(a: GeoPoint, b: GeoPoint): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLon = (b.lon - a.lon) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}

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
