"use client";

import { useCallback, useEffect, useMemo, useRef, useState, type CSSProperties } from "react";
import { useShallow } from "zustand/react/shallow";
import type { Member } from "@/lib/protocol";
import { useCallStore } from "@/store/call-store";
import { ScreenShareIcon, UsersIcon } from "@/components/icons";
import { ChatPanel } from "./ChatPanel";
import { ControlBar, type PanelName } from "./ControlBar";
import { gridColumns, has } from "./derive";
import { ParticipantsPanel, ScreenshareRequestActions, WaitingActions } from "./ParticipantsPanel";
import { RoomHeader } from "./RoomHeader";
import { SettingsPanel } from "./SettingsPanel";
import { StreamVideo } from "./StreamVideo";
import { VideoTile, type TileModel } from "./VideoTile";

function useTiles(): TileModel[] {
  const { self, room, peers, speaking, localStream, audioEnabled, videoEnabled, sharing } = useCallStore(
    useShallow((s) => ({
      self: s.self,
      room: s.room,
      peers: s.peers,
      speaking: s.speaking,
      localStream: s.localStream,
      audioEnabled: s.audioEnabled,
      videoEnabled: s.videoEnabled,
      sharing: s.sharing,
    })),
  );
  return useMemo(() => {
    if (!self || !room) return [];
    const members: Member[] = room.participants.some((m) => m.clientId === self.clientId)
      ? room.participants
      : [{ clientId: self.clientId, displayName: self.displayName }, ...room.participants];
    // Peers the room state does not list (yet) still get a tile, so their media is heard.
    const extra = Object.values(peers).filter((p) => !members.some((m) => m.clientId === p.clientId));
    const all: Member[] = [...members, ...extra.map((p) => ({ clientId: p.clientId, displayName: p.displayName }))];
    const tiles = all.map((member): TileModel => {
      const isSelf = member.clientId === self.clientId;
      const peer = peers[member.clientId];
      return {
        clientId: member.clientId,
        displayName: isSelf ? self.displayName : member.displayName,
        isSelf,
        stream: isSelf ? localStream : (peer?.stream ?? null),
        audioOn: isSelf ? audioEnabled : has(room.unmuted, member.clientId),
        videoOn: isSelf ? videoEnabled : has(room.cameraOn, member.clientId),
        handRaised: has(room.handsRaised, member.clientId),
        host: has(room.hosts, member.clientId),
        speaking: speaking[member.clientId] === true,
        sharing: isSelf ? sharing : has(room.sharingScreen, member.clientId),
        connectionState: isSelf ? undefined : (peer?.connectionState ?? "new"),
      };
    });
    // Own tile first, everyone else in order of arrival.
    return [...tiles.filter((t) => t.isSelf), ...tiles.filter((t) => !t.isSelf)];
  }, [self, room, peers, speaking, localStream, audioEnabled, videoEnabled, sharing]);
}

interface Sharer {
  clientId: string;
  displayName: string;
  isSelf: boolean;
  stream: MediaStream | null;
}

function useSharers(): Sharer[] {
  const { self, room, peers, screenStream, sharing } = useCallStore(
    useShallow((s) => ({ self: s.self, room: s.room, peers: s.peers, screenStream: s.screenStream, sharing: s.sharing })),
  );
  return useMemo(() => {
    if (!self || !room) return [];
    const list: Sharer[] = room.sharingScreen
      .filter((m) => m.clientId !== self.clientId)
      .map((m) => ({ clientId: m.clientId, displayName: m.displayName, isSelf: false, stream: peers[m.clientId]?.screenStream ?? null }));
    if (sharing || has(room.sharingScreen, self.clientId)) {
      list.push({ clientId: self.clientId, displayName: self.displayName, isSelf: true, stream: screenStream });
    }
    return list;
  }, [self, room, peers, screenStream, sharing]);
}

function ScreenShareStage({ sharers }: { sharers: Sharer[] }) {
  const [chosen, setChosen] = useState<string | null>(null);
  const current = sharers.find((s) => s.clientId === chosen) ?? sharers[0];
  return (
    <section
      className="screen-share"
      data-testid="screen-share"
      data-client-id={current.clientId}
      aria-label={current.isSelf ? "Your shared screen" : `${current.displayName}'s shared screen`}
    >
      <StreamVideo stream={current.stream} muted={current.isSelf} fit="contain" />
      {!current.stream && <div className="tile-note">Loading {current.isSelf ? "your" : `${current.displayName}'s`} screen…</div>}
      <div className="share-caption">
        <ScreenShareIcon size={16} />
        <span>{current.isSelf ? "You are sharing your screen" : `${current.displayName} is sharing their screen`}</span>
      </div>
      {sharers.length > 1 && (
        <div className="share-switcher" role="group" aria-label="Shared screens">
          {sharers.map((s) => (
            <button
              key={s.clientId}
              type="button"
              className={`chip ${s.clientId === current.clientId ? "chip-active" : ""}`}
              aria-pressed={s.clientId === current.clientId}
              onClick={() => setChosen(s.clientId)}
            >
              {s.isSelf ? "Your screen" : s.displayName}
            </button>
          ))}
        </div>
      )}
    </section>
  );
}

function VideoGrid({ tiles }: { tiles: TileModel[] }) {
  const count = tiles.length;
  const cols = gridColumns(count);
  const rows = Math.max(1, Math.ceil(count / cols));
  const style = { "--cols": String(cols), "--rows": String(rows) } as CSSProperties;
  return (
    <div className="grid-wrap">
      <div className={`video-grid ${count > 12 ? "is-crowded" : ""}`} style={style} data-count={count} data-cols={cols}>
        {tiles.map((tile) => (
          <div key={tile.clientId} className="grid-cell">
            <VideoTile {...tile} />
          </div>
        ))}
      </div>
    </div>
  );
}

/** Hosts: who is waiting or asking to share, over the stage while the participants panel is closed. */
function HostPrompts({ onOpenParticipants }: { onOpenParticipants: () => void }) {
  const { room, isHost } = useCallStore(useShallow((s) => ({ room: s.room, isHost: s.self?.role === "host" })));
  if (!room || !isHost) return null;
  const waiting = room.waitingUsers;
  const requests = room.screenshareRequests;
  if (waiting.length === 0 && requests.length === 0) return null;
  const shownWaiting = waiting.slice(0, 3);
  const shownRequests = requests.slice(0, 2);
  const more = waiting.length - shownWaiting.length + (requests.length - shownRequests.length);
  return (
    <section className="host-prompts" aria-label="Requests for hosts">
      {shownWaiting.map((member) => (
        <div key={`w-${member.clientId}`} className="prompt">
          <UsersIcon size={18} className="prompt-icon" />
          <p className="prompt-text">
            <strong>{member.displayName}</strong> wants to join
          </p>
          <WaitingActions member={member} />
        </div>
      ))}
      {shownRequests.map((member) => (
        <div key={`s-${member.clientId}`} className="prompt">
          <ScreenShareIcon size={18} className="prompt-icon" />
          <p className="prompt-text">
            <strong>{member.displayName}</strong> asks to share their screen
          </p>
          <ScreenshareRequestActions member={member} />
        </div>
      ))}
      {more > 0 && (
        <button type="button" className="btn btn-ghost btn-sm prompt-more" onClick={onOpenParticipants}>
          {more} more — view all
        </button>
      )}
    </section>
  );
}

function useUnreadChat(panelOpen: boolean): number {
  const { chat, selfId } = useCallStore(useShallow((s) => ({ chat: s.chat, selfId: s.self?.clientId })));
  const seen = useRef<Set<string> | null>(null);
  const [, force] = useState(0);
  if (seen.current === null) seen.current = new Set(chat.map((m) => m.chatId));
  // Messages from before joining (history) count as read.
  const joinedAt = useRef(Date.now());
  useEffect(() => {
    if (!panelOpen) return;
    let added = false;
    for (const m of chat) {
      if (!seen.current?.has(m.chatId)) {
        seen.current?.add(m.chatId);
        added = true;
      }
    }
    if (added) force((n) => n + 1);
  }, [panelOpen, chat]);
  if (panelOpen) return 0;
  return chat.filter((m) => m.clientId !== selfId && !seen.current?.has(m.chatId) && m.timestamp > joinedAt.current - 2000).length;
}

type PanelState = Record<PanelName, boolean>;

const NO_PANELS: PanelState = { participants: false, chat: false, settings: false };

export function InRoom({ roomId, reconnecting }: { roomId: string; reconnecting: boolean }) {
  // Panels open independently (participants and chat side by side in one column), so a host
  // can admit people without losing the conversation.
  const [panels, setPanels] = useState<PanelState>(NO_PANELS);
  const tiles = useTiles();
  const sharers = useSharers();
  const { waitingCount, isHost } = useCallStore(
    useShallow((s) => ({ waitingCount: s.self?.role === "host" ? (s.room?.waitingUsers.length ?? 0) : 0, isHost: s.self?.role === "host" })),
  );
  const unreadChat = useUnreadChat(panels.chat);

  const togglePanel = useCallback((name: PanelName) => {
    setPanels((current) => ({ ...current, [name]: !current[name] }));
  }, []);

  const closePanel = useCallback((name: PanelName) => {
    setPanels((current) => ({ ...current, [name]: false }));
    // Give focus back to the control that opened the panel.
    requestAnimationFrame(() => document.getElementById(`ctrl-${name}`)?.focus());
  }, []);
  const closeChat = useCallback(() => closePanel("chat"), [closePanel]);
  const closeParticipants = useCallback(() => closePanel("participants"), [closePanel]);
  const closeSettings = useCallback(() => closePanel("settings"), [closePanel]);

  const sharing = sharers.length > 0;
  const anyPanel = panels.chat || panels.participants || panels.settings;

  return (
    <div className={`call ${anyPanel ? "has-panel" : ""}`}>
      <RoomHeader roomId={roomId} homeLink={false}>
        {isHost && (
          <span className="tag tag-host tag-header" title="You can admit people, grant screen sharing and manage the call">
            You&apos;re a host
          </span>
        )}
      </RoomHeader>

      <div className="conn-status" role="status">
        {reconnecting && (
          <div className="conn-banner">
            <span className="spinner spinner-sm" aria-hidden="true" />
            Reconnecting…
          </div>
        )}
      </div>

      <div className="call-body">
        <main className={`stage ${sharing ? "stage-sharing" : ""}`} aria-label="Call">
          {sharing ? (
            <div className="share-layout">
              <ScreenShareStage sharers={sharers} />
              <div className="filmstrip" aria-label="Participants' video">
                {tiles.map((tile) => (
                  <div key={tile.clientId} className="film-cell">
                    <VideoTile {...tile} />
                  </div>
                ))}
              </div>
            </div>
          ) : (
            <VideoGrid tiles={tiles} />
          )}
          {!panels.participants && (
            <HostPrompts onOpenParticipants={() => setPanels((current) => ({ ...current, participants: true }))} />
          )}
        </main>

        {anyPanel && (
          <div className="side-column">
            {panels.participants && <ParticipantsPanel onClose={closeParticipants} />}
            {panels.chat && <ChatPanel onClose={closeChat} />}
            {panels.settings && <SettingsPanel onClose={closeSettings} />}
          </div>
        )}
      </div>

      <ControlBar
        roomId={roomId}
        panels={panels}
        onTogglePanel={togglePanel}
        unreadChat={unreadChat}
        waitingCount={waitingCount}
      />
    </div>
  );
}
