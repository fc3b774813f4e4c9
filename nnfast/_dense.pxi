# dense wrappers
