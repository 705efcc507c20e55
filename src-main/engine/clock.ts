/**
 * One clock for every thread of the process, for timestamps that are compared across threads (a step finished in
 * the engine worker vs a cancel pressed on the main thread). `performance.timeOrigin + performance.now()` is not
 * that clock: each thread fixes its timeOrigin from two clock reads (wall clock and monotonic) when it starts, so
 * two threads can disagree by as much as the start was delayed between the reads, or by a wall-clock step.
 */
export function processClockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
