"""From radio bytes to revolutions. Knows nothing of chats or storage."""
