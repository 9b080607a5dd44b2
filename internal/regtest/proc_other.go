//go:build !linux

package regtest

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
