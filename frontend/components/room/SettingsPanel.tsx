"use client";

import { DevicePickers } from "./DevicePickers";
import { SidePanel } from "./SidePanel";

export function SettingsPanel({ onClose }: { onClose: () => void }) {
  return (
    <SidePanel id="settings-panel" title="Settings" onClose={onClose}>
      <div className="panel-scroll">
        <section className="panel-section">
          <h3 className="section-title">Devices</h3>
          <DevicePickers />
          <p className="panel-note">Switching a device takes effect right away for everyone in the call.</p>
        </section>
      </div>
    </SidePanel>
  );
}
