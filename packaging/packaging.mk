.PHONY: packages-test
packages-test:
	@true
