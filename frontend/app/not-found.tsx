import { LogoMark } from "@/components/icons";

export default function NotFound() {
  return (
    <div className="home">
      <header className="home-header">
        <a href="/" className="brand">
          <LogoMark />
          <span className="brand-name">Videoconf</span>
        </a>
      </header>
      <main className="notfound">
        <h1>This link doesn&apos;t lead to a room</h1>
        <p>Check the link you were sent, or start a new call from the home page.</p>
        <a className="btn btn-primary" href="/">
          Home
        </a>
      </main>
    </div>
  );
}
