"""Building images: plan (pure data) -> schema gate -> up-to-date check -> concurrent BuildKit
builds -> results. The view module renders; nothing else here prints."""
