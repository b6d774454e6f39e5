"""Speakers for voice prompts: a standard audio player as a child process, or a simulated one."""
