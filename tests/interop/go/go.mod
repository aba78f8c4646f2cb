module certmint.test/interop/go

go 1.26
