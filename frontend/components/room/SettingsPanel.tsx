"use client";

import { useId } from "react";
import { useCallStore } from "@/store/call-store";
import { DevicePickers } from "./DevicePickers";
import { SidePanel } from "./SidePanel";

function RelayOnlySetting() {
  const id = useId();
  const relayOnly = useCallStore((s) => s.relayOnly);
  const setRelayOnly = useCallStore((s) => s.actions.setRelayOnly);
  return (
    <div className="setting-toggle">
      <input id={id} type="checkbox" checked={relayOnly} onChange={(e) => setRelayOnly(e.target.checked)} />
      <label htmlFor={id} className="field-label">
        Relay all media through the TURN server
      </label>
    </div>
  );
}

export function SettingsPanel({ onClose }: { onClose: () => void }) {
  return (
    <SidePanel id="settings-panel" title="Settings" onClose={onClose}>
      <div className="panel-scroll">
        <section className="panel-section">
          <h3 className="section-title">Devices</h3>
          <DevicePickers />
          <p className="panel-note">Switching a device takes effect right away for everyone in the call.</p>
        </section>
        <section className="panel-section">
          <h3 className="section-title">Network</h3>
          <RelayOnlySetting />
          <p className="panel-note">
            For diagnosing connection problems: media goes only through the server&apos;s relay, never
            directly. Also turned on by adding <code>?relay=1</code> to the room link.
          </p>
        </section>
      </div>
    </SidePanel>
  );
}
