// Pure decisions of "perfect negotiation" (MDN, "Establishing a connection: the perfect
// negotiation pattern"), so that both ends of every pair agree without talking.
//
// Rules:
// - Politeness: the peer with the lexicographically SMALLER clientId is polite; the other
//   one is impolite. Exactly one side of every pair is polite (ids differ).
// - First offer: only the IMPOLITE side (larger clientId) creates the first offer to a newly
//   seen peer; the polite side waits for it. That avoids glare on the first negotiation.
//   Later renegotiations (screen share, ICE restart) may start on either side: glare is
//   then resolved by `shouldIgnoreOffer` below.

/** Compares by UTF-16 code units, the same on every JavaScript engine (no locale). */
export function isPolite(selfId: string, peerId: string): boolean {
  return selfId < peerId;
}

/** Whether we create the first offer when a peer connection to `peerId` is set up. */
export function shouldInitiate(selfId: string, peerId: string): boolean {
  return !isPolite(selfId, peerId);
}

export interface OfferContext {
  /** The type of the arriving description. */
  descriptionType: RTCSdpType;
  /** We are between starting and sending our own offer. */
  makingOffer: boolean;
  signalingState: RTCSignalingState;
  polite: boolean;
}

/** An offer arriving while we are making or holding one of our own. */
export function isOfferCollision(ctx: Omit<OfferContext, "polite">): boolean {
  return ctx.descriptionType === "offer" && (ctx.makingOffer || ctx.signalingState !== "stable");
}

/**
 * The impolite side ignores a colliding offer (its own offer wins); the polite side
 * accepts it (setRemoteDescription rolls its own offer back implicitly).
 */
export function shouldIgnoreOffer(ctx: OfferContext): boolean {
  return !ctx.polite && isOfferCollision(ctx);
}

/** The session id of an SDP's o= line; it stays the same for the life of a peer connection. */
export function sdpSessionId(sdp: string): string | null {
  const match = /^o=\S+ (\S+) /m.exec(sdp);
  return match ? match[1] : null;
}

/**
 * Whether an arriving offer comes from a different peer connection than the one we were
 * talking to (the other side reloaded or started afresh): its o= session id changed.
 */
export function isRemoteRestart(previousRemoteSdp: string | null | undefined, offerSdp: string): boolean {
  if (!previousRemoteSdp) return false;
  const before = sdpSessionId(previousRemoteSdp);
  const now = sdpSessionId(offerSdp);
  return before !== null && now !== null && before !== now;
}
