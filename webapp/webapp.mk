.PHONY: webapp-test
webapp-test:
	@true
