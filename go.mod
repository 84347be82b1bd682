module github.com/drago-wg/drago

go 1.26.8

require golang.zx2c4.com/wireguard/wgctrl v0.0.0-20241231184526-a9ab2273dd10

require (
	github.com/google/go-cmp v0.7.0 // indirect
	golang.org/x/crypto v0.43.0 // indirect
)
