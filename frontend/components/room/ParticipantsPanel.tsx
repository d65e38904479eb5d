"use client";

import { useShallow } from "zustand/react/shallow";
import type { Member } from "@/lib/protocol";
import { useCallStore } from "@/store/call-store";
import { avatarColor, initials } from "@/components/display-name";
import {
  CameraOffIcon,
  CheckIcon,
  CloseIcon,
  CrownIcon,
  HandDownIcon,
  HandIcon,
  MicOffIcon,
  ScreenShareIcon,
  UserMinusIcon,
} from "@/components/icons";
import { has } from "./derive";
import { SidePanel } from "./SidePanel";

function Avatar({ member }: { member: Member }) {
  return (
    <span className="avatar avatar-sm" style={{ background: avatarColor(member.displayName) }} aria-hidden="true">
      {initials(member.displayName)}
    </span>
  );
}

/** Host-only: people in the waiting room. Also used by the prompt over the stage. */
export function WaitingActions({ member }: { member: Member }) {
  const actions = useCallStore((s) => s.actions);
  return (
    <div className="row-actions">
      <button type="button" className="btn btn-ghost btn-xs" aria-label={`Deny ${member.displayName}`} onClick={() => actions.deny(member.clientId)}>
        Deny
      </button>
      <button type="button" className="btn btn-primary btn-xs" aria-label={`Admit ${member.displayName}`} onClick={() => actions.admit(member.clientId)}>
        Admit
      </button>
    </div>
  );
}

/** Host-only: screen share requests. Also used by the prompt over the stage. */
export function ScreenshareRequestActions({ member }: { member: Member }) {
  const actions = useCallStore((s) => s.actions);
  return (
    <div className="row-actions">
      <button
        type="button"
        className="btn btn-ghost btn-xs"
        aria-label={`Deny ${member.displayName} screen sharing`}
        onClick={() => actions.denyScreenshare(member.clientId)}
      >
        <CloseIcon size={14} />
        <span aria-hidden="true">Deny</span>
      </button>
      <button
        type="button"
        className="btn btn-primary btn-xs"
        aria-label={`Allow ${member.displayName} to share screen`}
        onClick={() => actions.grantScreenshare(member.clientId)}
      >
        <CheckIcon size={14} />
        <span aria-hidden="true">Allow</span>
      </button>
    </div>
  );
}

export function ParticipantsPanel({ onClose }: { onClose: () => void }) {
  const { room, self, audioEnabled, videoEnabled } = useCallStore(
    useShallow((s) => ({ room: s.room, self: s.self, audioEnabled: s.audioEnabled, videoEnabled: s.videoEnabled })),
  );
  const actions = useCallStore((s) => s.actions);
  if (!room || !self) return null;
  const isHost = self.role === "host";
  const waiting = isHost ? room.waitingUsers : [];
  const requests = isHost ? room.screenshareRequests : [];
  const people = [...room.participants].sort((a, b) => (a.clientId === self.clientId ? -1 : b.clientId === self.clientId ? 1 : 0));

  return (
    <SidePanel id="participants-panel" title="Participants" onClose={onClose}>
      <div className="panel-scroll">
        {waiting.length > 0 && (
          <section className="panel-section" aria-labelledby="waiting-heading">
            <h3 id="waiting-heading" className="section-title">
              Waiting to join <span className="count">{waiting.length}</span>
            </h3>
            <ul className="people-list">
              {waiting.map((member) => (
                <li key={member.clientId} className="person">
                  <Avatar member={member} />
                  <span className="person-name">{member.displayName}</span>
                  <WaitingActions member={member} />
                </li>
              ))}
            </ul>
          </section>
        )}

        {requests.length > 0 && (
          <section className="panel-section" aria-labelledby="requests-heading">
            <h3 id="requests-heading" className="section-title">
              Screen share requests <span className="count">{requests.length}</span>
            </h3>
            <ul className="people-list">
              {requests.map((member) => (
                <li key={member.clientId} className="person">
                  <Avatar member={member} />
                  <span className="person-name">{member.displayName}</span>
                  <ScreenshareRequestActions member={member} />
                </li>
              ))}
            </ul>
          </section>
        )}

        <section className="panel-section" aria-labelledby="incall-heading">
          <h3 id="incall-heading" className="section-title">
            In the call <span className="count">{people.length}</span>
          </h3>
          <ul className="people-list">
            {people.map((member) => {
              const isSelf = member.clientId === self.clientId;
              const host = has(room.hosts, member.clientId);
              const unmuted = isSelf ? audioEnabled : has(room.unmuted, member.clientId);
              const cameraOn = isSelf ? videoEnabled : has(room.cameraOn, member.clientId);
              const hand = has(room.handsRaised, member.clientId);
              const sharing = has(room.sharingScreen, member.clientId);
              const mayShare = !host && has(room.screenshareAllowed, member.clientId);
              const name = member.displayName;
              return (
                <li key={member.clientId} className="person person-member" data-client-id={member.clientId}>
                  <Avatar member={member} />
                  <div className="person-main">
                    <span className="person-name">
                      {name}
                      {isSelf && <span className="muted"> (You)</span>}
                    </span>
                    <span className="person-tags">
                      {host && (
                        <span className="tag tag-host">
                          <CrownIcon size={12} /> Host
                        </span>
                      )}
                      {sharing && (
                        <span className="tag">
                          <ScreenShareIcon size={12} /> Presenting
                        </span>
                      )}
                      {mayShare && !sharing && <span className="tag">Can present</span>}
                    </span>
                  </div>
                  <span className="person-status">
                    {hand && (
                      <span className="status-icon-sm is-hand" role="img" aria-label="Raised hand" title="Raised hand">
                        <HandIcon size={16} />
                      </span>
                    )}
                    {!unmuted && (
                      <span className="status-icon-sm" role="img" aria-label="Microphone off" title="Microphone off">
                        <MicOffIcon size={16} />
                      </span>
                    )}
                    {!cameraOn && (
                      <span className="status-icon-sm" role="img" aria-label="Camera is off" title="Camera is off">
                        <CameraOffIcon size={16} />
                      </span>
                    )}
                  </span>
                  {isHost && !isSelf && (
                    <div className="person-actions">
                      <button
                        type="button"
                        className="link-btn"
                        aria-label={`Ask ${name} to mute`}
                        onClick={() => actions.askToMute(member.clientId)}
                      >
                        <MicOffIcon size={13} />
                        <span aria-hidden="true">Ask to mute</span>
                      </button>
                      {hand && (
                        <button
                          type="button"
                          className="link-btn"
                          aria-label={`Lower ${name}'s hand`}
                          onClick={() => actions.lowerHand(member.clientId)}
                        >
                          <HandDownIcon size={13} />
                          <span aria-hidden="true">Lower hand</span>
                        </button>
                      )}
                      {!host && (
                        <button
                          type="button"
                          className="link-btn"
                          aria-label={`Make ${name} host`}
                          onClick={() => actions.makeHost(member.clientId)}
                        >
                          <CrownIcon size={13} />
                          <span aria-hidden="true">Make host</span>
                        </button>
                      )}
                      <button
                        type="button"
                        className="link-btn link-btn-danger"
                        aria-label={`Remove ${name}`}
                        onClick={() => actions.kick(member.clientId)}
                      >
                        <UserMinusIcon size={13} />
                        <span aria-hidden="true">Remove</span>
                      </button>
                    </div>
                  )}
                </li>
              );
            })}
          </ul>
        </section>
      </div>
    </SidePanel>
  );
}
