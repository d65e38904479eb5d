// How camera, microphone and screen travel on a peer connection, agreed by every client
// without msid or extra messages:
// - The first audio and the first video transceiver (in getTransceivers() order, which is
//   m-line order for both sides here) carry the microphone and the camera, both ways.
// - A screen share travels on a further video transceiver the sharer adds (sendonly). The
//   receiver treats the newest non-camera video transceiver that currently receives as
//   the sharer's screen; when the sharer stops, that transceiver stops receiving.

export function cameraTransceiver(
  transceivers: readonly RTCRtpTransceiver[],
  kind: "audio" | "video",
): RTCRtpTransceiver | undefined {
  return transceivers.find((t) => t.receiver.track.kind === kind);
}

/** The remote camera and microphone tracks, audio first. */
export function remoteCameraTracks(transceivers: readonly RTCRtpTransceiver[]): MediaStreamTrack[] {
  return [cameraTransceiver(transceivers, "audio"), cameraTransceiver(transceivers, "video")].flatMap((t) =>
    t ? [t.receiver.track] : [],
  );
}

/** The remote screen track, when the other side is sharing. */
export function remoteScreenTrack(transceivers: readonly RTCRtpTransceiver[]): MediaStreamTrack | null {
  const camera = cameraTransceiver(transceivers, "video");
  const receiving = transceivers.filter(
    (t) =>
      t !== camera &&
      t.receiver.track.kind === "video" &&
      (t.currentDirection === "recvonly" || t.currentDirection === "sendrecv"),
  );
  return receiving.length > 0 ? receiving[receiving.length - 1].receiver.track : null;
}

/** Whether `stream` holds exactly `tracks`. */
export function holdsExactly(stream: MediaStream | null, tracks: readonly MediaStreamTrack[]): boolean {
  if (!stream) return tracks.length === 0;
  const have = stream.getTracks();
  return have.length === tracks.length && tracks.every((t) => have.includes(t));
}
