import { HomeForm } from "@/components/home/HomeForm";
import { ChatIcon, HandIcon, LogoMark, ScreenShareIcon, ShieldIcon } from "@/components/icons";

const FEATURES = [
  {
    icon: ShieldIcon,
    title: "You decide who gets in",
    text: "Guests wait in a waiting room until a host admits them.",
  },
  {
    icon: ScreenShareIcon,
    title: "Share your screen",
    text: "Present from any tab or window. Hosts grant sharing to others.",
  },
  {
    icon: ChatIcon,
    title: "Chat alongside the call",
    text: "Send links and notes without interrupting whoever is speaking.",
  },
  {
    icon: HandIcon,
    title: "Raise a hand",
    text: "Keep larger calls orderly: hosts see who wants to speak next.",
  },
];

export default function HomePage() {
  return (
    <div className="home">
      <header className="home-header">
        <a href="/" className="brand">
          <LogoMark />
          <span className="brand-name">Videoconf</span>
        </a>
      </header>

      <main className="home-main">
        <section className="home-hero" aria-labelledby="home-title">
          <h1 id="home-title" className="home-title">
            Video calls for your team and your customers.
          </h1>
          <p className="home-lead">
            Start a room in one click and send the link. People join from the browser — nothing to
            install, no account needed. Audio and video go directly between participants.
          </p>
          <ul className="feature-list">
            {FEATURES.map(({ icon: Icon, title, text }) => (
              <li key={title} className="feature">
                <span className="feature-icon">
                  <Icon size={18} />
                </span>
                <span>
                  <strong>{title}</strong>
                  <span className="feature-text">{text}</span>
                </span>
              </li>
            ))}
          </ul>
        </section>

        <section className="home-panel" aria-label="Start or join a call">
          <HomeForm />
        </section>
      </main>

      <footer className="home-footer">
        <p>Works in current versions of Chrome, Edge, Firefox and Safari.</p>
      </footer>
    </div>
  );
}
