"use client";

import { useEffect, useId, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { useShallow } from "zustand/react/shallow";
import { useCallStore } from "@/store/call-store";
import { avatarColor, initials } from "@/components/display-name";
import { SendIcon, TrashIcon } from "@/components/icons";
import { formatTime } from "./derive";
import { SidePanel } from "./SidePanel";

/** docs/protocol.md, "Limits": chat messages are 1 to 1000 characters. */
export const MAX_CHAT_LENGTH = 1000;

export function ChatPanel({ onClose }: { onClose: () => void }) {
  const inputId = useId();
  const { chat, self } = useCallStore(useShallow((s) => ({ chat: s.chat, self: s.self })));
  const actions = useCallStore((s) => s.actions);
  const [text, setText] = useState("");
  const listRef = useRef<HTMLOListElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const stickToBottom = useRef(true);
  const isHost = self?.role === "host";

  useEffect(() => {
    inputRef.current?.focus();
  }, []);

  // Keep the newest message in view unless the user scrolled up to read older ones;
  // always follow one's own new message.
  const last = chat.length > 0 ? chat[chat.length - 1] : null;
  useLayoutEffect(() => {
    const list = listRef.current;
    if (!list) return;
    if (stickToBottom.current || (last !== null && last.clientId === self?.clientId)) {
      list.scrollTop = list.scrollHeight;
    }
  }, [chat.length, last, self?.clientId]);

  function autosize() {
    const el = inputRef.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }

  function send() {
    const content = text.trim();
    if (content.length === 0 || content.length > MAX_CHAT_LENGTH) return;
    actions.sendChat(content);
    setText("");
    stickToBottom.current = true;
    requestAnimationFrame(autosize);
  }

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    send();
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send();
    }
  }

  const length = text.length;
  const nearLimit = length > MAX_CHAT_LENGTH * 0.9;

  return (
    <SidePanel id="chat-panel" title="Chat" onClose={onClose} focusHeading={false}>
      <div className="chat-scroll">
        <ol
          ref={listRef}
          className="chat-list"
          aria-label="Chat messages"
          onScroll={(e) => {
            const el = e.currentTarget;
            stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
          }}
        >
          {chat.map((message) => {
            const own = message.clientId === self?.clientId;
            return (
              <li key={message.chatId} className={`chat-message ${own ? "is-own" : ""}`} data-testid="chat-message">
                <span className="avatar avatar-sm" style={{ background: avatarColor(message.displayName) }} aria-hidden="true">
                  {initials(message.displayName)}
                </span>
                <div className="chat-body">
                  <div className="chat-meta">
                    <span className="chat-sender">
                      {message.displayName}
                      {own && <span className="muted"> (You)</span>}
                    </span>
                    <time className="chat-time" dateTime={new Date(message.timestamp).toISOString()}>
                      {formatTime(message.timestamp)}
                    </time>
                    {(own || isHost) && (
                      <button
                        type="button"
                        className="icon-btn icon-btn-sm chat-delete"
                        aria-label="Delete message"
                        title="Delete"
                        onClick={() => actions.deleteChat(message.chatId)}
                      >
                        <TrashIcon size={14} />
                      </button>
                    )}
                  </div>
                  <p className="chat-text">{message.chatContent}</p>
                </div>
              </li>
            );
          })}
        </ol>
        {chat.length === 0 && (
          <p className="chat-empty">
            No messages yet. Messages are visible to everyone in the call and disappear when the room closes.
          </p>
        )}
      </div>

      <form className="chat-form" onSubmit={onSubmit}>
        <label htmlFor={inputId} className="sr-only">
          Message
        </label>
        <textarea
          ref={inputRef}
          id={inputId}
          className="chat-input"
          rows={1}
          maxLength={MAX_CHAT_LENGTH}
          placeholder="Message everyone"
          value={text}
          aria-describedby={`${inputId}-count`}
          onChange={(e) => {
            setText(e.target.value);
            autosize();
          }}
          onKeyDown={onKeyDown}
        />
        <div className="chat-form-footer">
          <span id={`${inputId}-count`} className={`chat-counter ${nearLimit ? "is-near" : ""}`}>
            <span className="sr-only">Characters used: </span>
            {length}/{MAX_CHAT_LENGTH}
          </span>
          <span className="chat-tip" aria-hidden="true">
            Shift+Enter for a new line
          </span>
          <button type="submit" className="btn btn-primary btn-sm" aria-label="Send" disabled={text.trim().length === 0}>
            <SendIcon size={16} />
            <span aria-hidden="true">Send</span>
          </button>
        </div>
      </form>
    </SidePanel>
  );
}
