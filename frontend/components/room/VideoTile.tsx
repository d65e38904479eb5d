"use client";

import { memo } from "react";
import { avatarColor, initials } from "@/components/display-name";
import { CameraOffIcon, CrownIcon, HandIcon, MicOffIcon } from "@/components/icons";
import { StreamVideo } from "./StreamVideo";

export interface TileModel {
  clientId: string;
  displayName: string;
  isSelf: boolean;
  stream: MediaStream | null;
  audioOn: boolean;
  videoOn: boolean;
  handRaised: boolean;
  host: boolean;
  speaking: boolean;
  sharing: boolean;
  /** Remote peers only: the WebRTC connection state. */
  connectionState?: RTCPeerConnectionState;
}

function connectionNote(tile: TileModel): string | null {
  if (tile.isSelf) return null;
  switch (tile.connectionState) {
    case "failed":
      return "Connection failed";
    case "disconnected":
      return "Connection interrupted…";
    case "new":
    case "connecting":
      return tile.stream ? null : "Connecting…";
    default:
      return null;
  }
}

export const VideoTile = memo(function VideoTile(tile: TileModel) {
  const showVideo = tile.videoOn && tile.stream !== null;
  const note = connectionNote(tile);
  return (
    <div
      className="tile"
      data-testid="video-tile"
      data-client-id={tile.clientId}
      data-self={tile.isSelf ? "true" : undefined}
      data-speaking={tile.speaking ? "true" : undefined}
      data-camera={showVideo ? "on" : "off"}
    >
      <StreamVideo stream={tile.stream} muted={tile.isSelf} mirrored={tile.isSelf} hidden={!showVideo} />
      {!showVideo && (
        <div className="tile-avatar" aria-hidden="true">
          <span className="avatar avatar-xl" style={{ background: avatarColor(tile.displayName) }}>
            {initials(tile.displayName)}
          </span>
        </div>
      )}
      {note && <div className="tile-note">{note}</div>}

      {tile.handRaised && (
        <span className="tile-hand" role="img" aria-label="Hand raised" title="Hand raised">
          <HandIcon size={18} />
        </span>
      )}

      <div className="tile-footer">
        <span className="tile-name" title={tile.displayName}>
          {tile.displayName}
          {tile.isSelf && <span className="tile-you"> (You)</span>}
        </span>
        <span className="tile-badges">
          {tile.host && (
            <span className="tile-badge badge-host" role="img" aria-label="Host" title="Host">
              <CrownIcon size={14} />
            </span>
          )}
          {!tile.audioOn && (
            <span className="tile-badge badge-muted" role="img" aria-label="Muted" title="Muted">
              <MicOffIcon size={14} />
            </span>
          )}
          {!tile.videoOn && (
            <span className="tile-badge" role="img" aria-label="Camera off" title="Camera off">
              <CameraOffIcon size={14} />
            </span>
          )}
        </span>
      </div>
    </div>
  );
});
