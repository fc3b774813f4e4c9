# loss wrappers
