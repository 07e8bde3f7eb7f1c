"""The Discord features, one Cog each: asking (slash command, mentions, ask channels) and administration."""
