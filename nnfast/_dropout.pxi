# dropout wrappers
