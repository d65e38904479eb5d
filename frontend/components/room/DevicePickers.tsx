"use client";

import { useId } from "react";
import { useShallow } from "zustand/react/shallow";
import { useCallStore } from "@/store/call-store";
import { CameraIcon, MicIcon } from "@/components/icons";

function DeviceSelect({
  label,
  kind,
  devices,
  selected,
  onSelect,
}: {
  label: "Microphone" | "Camera";
  kind: "audio" | "video";
  devices: MediaDeviceInfo[];
  selected: string | null;
  onSelect: (deviceId: string) => void;
}) {
  const id = useId();
  const Icon = kind === "audio" ? MicIcon : CameraIcon;
  const usable = devices.filter((d) => d.deviceId !== "");
  const value = selected && usable.some((d) => d.deviceId === selected) ? selected : (usable[0]?.deviceId ?? "");
  return (
    <div className="field device-field">
      <label htmlFor={id} className="field-label">
        <Icon size={16} />
        <span>{label}</span>
      </label>
      <select
        id={id}
        className="select"
        value={value}
        disabled={usable.length === 0}
        onChange={(e) => onSelect(e.target.value)}
      >
        {usable.length === 0 ? (
          <option value="">{kind === "audio" ? "No microphone available" : "No camera available"}</option>
        ) : (
          usable.map((device, index) => (
            <option key={device.deviceId} value={device.deviceId}>
              {device.label || `${label} ${index + 1}`}
            </option>
          ))
        )}
      </select>
    </div>
  );
}

export function DevicePickers() {
  const { devices, selectedAudioInput, selectedVideoInput } = useCallStore(
    useShallow((s) => ({
      devices: s.devices,
      selectedAudioInput: s.selectedAudioInput,
      selectedVideoInput: s.selectedVideoInput,
    })),
  );
  const actions = useCallStore((s) => s.actions);
  return (
    <div className="device-pickers">
      <DeviceSelect
        label="Microphone"
        kind="audio"
        devices={devices.audioInputs}
        selected={selectedAudioInput}
        onSelect={(id) => void actions.selectAudioInput(id)}
      />
      <DeviceSelect
        label="Camera"
        kind="video"
        devices={devices.videoInputs}
        selected={selectedVideoInput}
        onSelect={(id) => void actions.selectVideoInput(id)}
      />
    </div>
  );
}
