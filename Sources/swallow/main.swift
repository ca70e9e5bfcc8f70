import SwallowCLI

await SwallowCommand.runFromCommandLine()
