module genprofiles

go 1.19
