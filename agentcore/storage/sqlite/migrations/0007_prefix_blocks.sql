-- How the prompt's stable prefix shows each agent's core memory (agentcore/memory/prefix.py):
-- written when a turn edits a block, so later prompts keep the same prefix. '' = as they are.
ALTER TABLE agents ADD COLUMN prefix_blocks TEXT NOT NULL DEFAULT '';
