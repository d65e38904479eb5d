// Reading the selected ICE candidate pair out of getStats().

type StatsEntry = Record<string, unknown> & { id?: unknown; type?: unknown };

function entries(report: RTCStatsReport | Map<string, unknown>): StatsEntry[] {
  const out: StatsEntry[] = [];
  report.forEach((value: unknown) => {
    if (typeof value === "object" && value !== null) out.push(value as StatsEntry);
  });
  return out;
}

/** The selected candidate pair: the transport's selectedCandidatePairId, else a pair marked selected or nominated+succeeded. */
export function selectedCandidatePair(report: RTCStatsReport | Map<string, unknown>): StatsEntry | null {
  const all = entries(report);
  const byId = new Map(all.map((e) => [e.id, e]));
  for (const e of all) {
    if (e.type === "transport" && typeof e.selectedCandidatePairId === "string") {
      const pair = byId.get(e.selectedCandidatePairId);
      if (pair) return pair;
    }
  }
  return (
    all.find((e) => e.type === "candidate-pair" && e.selected === true) ??
    all.find((e) => e.type === "candidate-pair" && e.nominated === true && e.state === "succeeded") ??
    null
  );
}

/** Whether the selected pair goes through a TURN relay on either side. */
export function isRelayed(report: RTCStatsReport | Map<string, unknown>): boolean {
  const pair = selectedCandidatePair(report);
  if (!pair) return false;
  const all = entries(report);
  const byId = new Map(all.map((e) => [e.id, e]));
  const local = byId.get(pair.localCandidateId);
  const remote = byId.get(pair.remoteCandidateId);
  return local?.candidateType === "relay" || remote?.candidateType === "relay";
}
