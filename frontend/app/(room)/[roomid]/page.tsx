import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { isValidRoomId } from "@/lib/api";
import { Room } from "@/components/room/Room";

interface RoomPageProps {
  params: Promise<{ roomid: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}

export async function generateMetadata({ params }: Pick<RoomPageProps, "params">): Promise<Metadata> {
  const { roomid } = await params;
  return {
    title: isValidRoomId(roomid) ? `Room ${roomid}` : "Room not found",
    robots: { index: false, follow: false },
  };
}

export default async function RoomPage({ params, searchParams }: RoomPageProps) {
  const { roomid } = await params;
  if (!isValidRoomId(roomid)) notFound();
  const query = await searchParams;
  const name = typeof query.name === "string" ? query.name : "";
  return <Room roomId={roomid} initialName={name} />;
}
